# Tiny TCP relay: forwards both ways, records each chunk as
# 1 byte direction ('C' client->server, 'S' server->client), u32 BE length, bytes.
import socket, sys, threading, os
listen_port, target_port, outdir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
os.makedirs(outdir, exist_ok=True)
n = 0
lock = threading.Lock()
def pump(src, dst, tag, f):
    while True:
        try: data = src.recv(65536)
        except OSError: data = b''
        if not data:
            try: dst.shutdown(socket.SHUT_WR)
            except OSError: pass
            return
        with lock:
            f.write(tag + len(data).to_bytes(4, 'big') + data); f.flush()
        dst.sendall(data)
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', listen_port)); srv.listen(64)
while True:
    c, _ = srv.accept(); n += 1
    s = socket.create_connection(('127.0.0.1', target_port))
    f = open(os.path.join(outdir, 'conn%03d.bin' % n), 'wb')
    t1 = threading.Thread(target=pump, args=(c, s, b'C', f)); t2 = threading.Thread(target=pump, args=(s, c, b'S', f))
    t1.start(); t2.start()
