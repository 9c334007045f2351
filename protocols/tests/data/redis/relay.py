"""A tiny TCP relay that forwards both directions unchanged and records every
chunk, in the order it was forwarded, to OUTDIR/conn-N.bin as records of
[1 byte direction: 'C' client->server, 'S' server->client][u32 BE length][bytes]."""
import socket, sys, threading, struct, os
listen_port, target_port, outdir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
os.makedirs(outdir, exist_ok=True)
n = 0
def pump(src, dst, tag, f, lock):
    while True:
        try:
            data = src.recv(65536)
        except OSError:
            data = b""
        if not data:
            try: dst.shutdown(socket.SHUT_WR)
            except OSError: pass
            return
        with lock:
            f.write(tag + struct.pack(">I", len(data)) + data); f.flush()
            dst.sendall(data)
def handle(c, i):
    s = socket.create_connection(("127.0.0.1", target_port))
    f = open(os.path.join(outdir, f"conn-{i}.bin"), "wb"); lock = threading.Lock()
    a = threading.Thread(target=pump, args=(c, s, b"C", f, lock)); b = threading.Thread(target=pump, args=(s, c, b"S", f, lock))
    a.start(); b.start(); a.join(); b.join(); f.close(); c.close(); s.close()
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", listen_port)); ls.listen(64)
while True:
    c, _ = ls.accept(); n += 1
    threading.Thread(target=handle, args=(c, n), daemon=True).start()
