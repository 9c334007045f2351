"""redis-py (RESP3) through tapmesh's Redis proxy, for tests/proxy_redis.rs.

    redis_client.py HOST PORT PASSWORD

Speaks RESP3 (`HELLO 3 AUTH default PASSWORD`, as redis-py does with
protocol=3), then: a plain SET and GET, a hash read back as a RESP3 map,
a pipeline of three commands sent in one write, a transaction (MULTI,
two commands, EXEC), a command that fails (INCR of a string) and client-side
caching's invalidation push (CLIENT TRACKING on, then the key changed by
another connection). Prints what it got as one JSON object so the test can
check the client's view against the events.
"""

import json
import sys
import time

import redis


def main() -> None:
    host, port, password = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    r = redis.Redis(host=host, port=port, password=password, protocol=3,
                    client_name="shop-py", decode_responses=True)
    seen = {}
    r.set("greeting", "hello")
    seen["get"] = r.get("greeting")
    r.hset("item:A-7", mapping={"name": "anvil", "stock": "3"})
    seen["hgetall"] = r.hgetall("item:A-7")

    pipe = r.pipeline(transaction=False)
    pipe.set("p:1", "one").incr("counter").lrange("missing", 0, -1)
    seen["pipeline"] = pipe.execute()

    tx = r.pipeline(transaction=True)
    tx.incrby("stock:A-7", 5).decr("stock:A-7")
    seen["transaction"] = tx.execute()

    try:
        r.incr("greeting")
    except redis.ResponseError as e:
        seen["error"] = str(e)

    # Client-side caching: the server pushes an invalidation on this
    # connection when another client changes a key it read.
    tracked = redis.Redis(host=host, port=port, password=password, protocol=3,
                          decode_responses=True, single_connection_client=True)
    tracked.execute_command("CLIENT", "TRACKING", "ON")
    tracked.get("watched")
    r.set("watched", "changed")
    # The invalidation arrives on its own; a PING after a pause reads it.
    time.sleep(0.2)
    tracked.ping()
    tracked.close()
    r.close()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
