"""An independent PostgreSQL client (Python psycopg 3, libpq underneath) for
tapmesh's tests: it drives a server, usually through `tapmesh proxy
--protocol postgres`, and prints one JSON object with what it saw, so the
test can hold the proxy's events against the client's own account.

    pg_client.py CONNINFO

Scenarios, each on a connection of its own and in this order:

  setup      CREATE TABLE gadgets (autocommit)
  binary     an INSERT with every parameter sent in binary (%b): int, text,
             bytea, uuid, timestamptz, bool, float8; then a SELECT asking for
             binary results (binary=True)
  prepared   the same SELECT three times with prepare=True: one Parse, then
             Bind/Execute by name; the name read back from
             pg_prepared_statements
  pipeline   conn.pipeline(): an INSERT, an UPDATE and a SELECT sent before
             any answer is read
  error      an INSERT that violates the primary key (23505)
  rollback   a transaction (autocommit off): INSERT, SELECT count, ROLLBACK

Every scenario checks what the client got (rows, the error's fields), so a
proxy that garbled the traffic fails here too.
"""

import datetime
import json
import sys
import uuid

import psycopg
from psycopg import errors

UID = uuid.UUID("6f1c2a3b-4d5e-4f60-8a9b-0c1d2e3f4a5b")
AT = datetime.datetime(2024, 5, 6, 7, 8, 9, 250000, tzinfo=datetime.timezone.utc)


def connect(conninfo, autocommit=True):
    return psycopg.connect(conninfo, autocommit=autocommit)


def setup(conninfo):
    with connect(conninfo) as conn:
        conn.execute(
            "CREATE TABLE gadgets (id int PRIMARY KEY, name text, data bytea,"
            " uid uuid, made timestamptz, ok bool, price float8)"
        )
    return {}


def binary(conninfo):
    with connect(conninfo) as conn:
        conn.execute(
            "INSERT INTO gadgets (id, name, data, uid, made, ok, price)"
            " VALUES (%b, %b, %b, %b, %b, %b, %b)",
            (1, "sprocket", b"\x00\xffA", UID, AT, True, 2.5),
        )
        cur = conn.cursor(binary=True)
        cur.execute("SELECT name, uid, made FROM gadgets WHERE id = %s", (1,))
        rows = cur.fetchall()
    assert rows == [("sprocket", UID, AT)], rows
    return {"rows": len(rows)}


def prepared(conninfo):
    with connect(conninfo) as conn:
        got = []
        for i in (1, 2, 1):
            cur = conn.execute(
                "SELECT name FROM gadgets WHERE id = %s", (i,), prepare=True
            )
            got.append(cur.fetchall())
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM pg_prepared_statements ORDER BY name"
            ).fetchall()
        ]
    assert got == [[("sprocket",)], [], [("sprocket",)]], got
    return {"statements": names}


def pipeline(conninfo):
    with connect(conninfo) as conn:
        with conn.pipeline():
            conn.execute(
                "INSERT INTO gadgets (id, name) VALUES (%s, %s)", (2, "widget")
            )
            conn.execute("UPDATE gadgets SET price = %s WHERE id = %s", (4.75, 2))
            cur = conn.execute("SELECT id, name FROM gadgets ORDER BY id")
        rows = cur.fetchall()
    assert rows == [(1, "sprocket"), (2, "widget")], rows
    return {"rows": len(rows)}


def error(conninfo):
    with connect(conninfo) as conn:
        try:
            conn.execute(
                "INSERT INTO gadgets (name, id) VALUES (%s, %s)", ("duplicate", 1)
            )
        except errors.UniqueViolation as e:
            d = e.diag
            return {
                "severity": d.severity_nonlocalized,
                "code": d.sqlstate,
                "message": d.message_primary,
                "detail": d.message_detail,
            }
    raise AssertionError("the duplicate INSERT succeeded")


def rollback(conninfo):
    with connect(conninfo, autocommit=False) as conn:
        conn.execute(
            "INSERT INTO gadgets (id, name, ok) VALUES (%s, %s, %s)", (3, "ghost", False)
        )
        inside = conn.execute("SELECT count(*) FROM gadgets").fetchone()[0]
        conn.rollback()
    with connect(conninfo) as conn:
        after = conn.execute("SELECT count(*) AS n FROM gadgets").fetchone()[0]
    assert (inside, after) == (3, 2), (inside, after)
    return {"inside": inside, "after": after}


def main():
    conninfo = sys.argv[1]
    report = {}
    for scenario in (setup, binary, prepared, pipeline, error, rollback):
        report[scenario.__name__] = scenario(conninfo)
    report["psycopg"] = psycopg.__version__
    report["libpq"] = psycopg.pq.version()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
