import redis, sys, time
port = int(sys.argv[1])
direct = int(sys.argv[2]) if len(sys.argv) > 2 else 16379  # the server itself, for a second client
r = redis.Redis(port=port, protocol=3)
r.set("py:k", "v1")
r.hset("py:h", mapping={"a": "1", "b": "2"})
print(r.hgetall("py:h"))
p = r.pipeline(transaction=False)
for i in range(20):
    p.incr("py:n")
p.get("py:k")
p.lrange("nolist", 0, -1)
print(p.execute()[-3:])
t = r.pipeline(transaction=True)
t.set("py:t", "x"); t.incr("py:t"); t.get("py:t"); t.sadd("py:s", "m")
try:
    print(t.execute(raise_on_error=False))
except Exception as e:
    print("tx error", e)
# WATCH + failed EXEC (someone else changes the key)
with r.pipeline() as w:
    w.watch("py:w")
    redis.Redis(port=direct).set("py:w", "other")
    w.multi(); w.set("py:w", "mine")
    try: w.execute()
    except redis.WatchError: print("watch error")
# pub/sub in RESP3
ps = r.pubsub()
ps.subscribe("chan3"); ps.psubscribe("pat3.*")
print(ps.get_message(timeout=1)); print(ps.get_message(timeout=1))
redis.Redis(port=direct).publish("chan3", "hi-3")
redis.Redis(port=direct).publish("pat3.x", "hi-pat")
print(ps.get_message(timeout=1)); print(ps.get_message(timeout=1))
ps.unsubscribe(); ps.punsubscribe()
print(ps.get_message(timeout=1)); print(ps.get_message(timeout=1))
ps.close()
r.close()
