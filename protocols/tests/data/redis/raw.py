# A raw client: sends each argv item as a chunk (with escapes), reading replies in between.
import socket, sys, time
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port))
for item in sys.argv[2:]:
    s.sendall(item.encode().decode('unicode_escape').encode('latin-1'))
    time.sleep(0.15)
s.settimeout(0.3)
try:
    while s.recv(65536): pass
except socket.timeout: pass
s.close()
