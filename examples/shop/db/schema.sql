-- The shop's schema, run once by the `db` service's `init` before
-- anything that depends on it starts.
CREATE TABLE orders (
    id         bigserial PRIMARY KEY,
    sku        text NOT NULL,
    quantity   int NOT NULL CHECK (quantity > 0),
    status     text NOT NULL DEFAULT 'pending',
    remaining  int,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_by_sku ON orders (sku);
