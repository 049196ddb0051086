# tests/lib/stub.sh - sourced by the shell suites (tests/static, tests/image):
# the Keycloak stand-in over HTTPS with the test CA.
#
# Needs: $work (the suite's scratch folder, with certs/ made by
# make-certs.sh), $STUB, $ADMIN_PASSWORD, and the suite's fail and diag.

# stub_start: starts the stand-in on a free port; sets stub_pid (for the
# suite's cleanup), port, and URL=https://kc.test:PORT. Returns 1, after
# reporting, when it does not start.
stub_start() {
	python3 "$STUB" --port 0 --port-file "$work/port" \
		--tls-cert "$work/certs/server.pem" --tls-key "$work/certs/server-key.pem" \
		--admin-password "$ADMIN_PASSWORD" >"$work/stub.log" 2>&1 &
	stub_pid=$!
	i=0
	while [ ! -s "$work/port" ] && [ "$i" -lt 100 ] && kill -0 "$stub_pid" 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
	port=$(cat "$work/port" 2>/dev/null)
	if [ -z "$port" ]; then
		diag <"$work/stub.log"
		fail "the stand-in starts with the test certificate"
		return 1
	fi
	URL=https://kc.test:$port
}

# stub_realms: the stand-in's realm names, one a line (from the host, over
# localhost, which the test certificate also names).
stub_realms() {
	python3 - "https://localhost:$port/_stub/realms" "$work/certs/ca.pem" <<-'PY'
		import json, ssl, sys, urllib.request
		ctx = ssl.create_default_context(cafile=sys.argv[2])
		doc = json.load(urllib.request.urlopen(sys.argv[1], context=ctx, timeout=10))
		def names(d):
		    if isinstance(d, dict):
		        if isinstance(d.get("realm"), str):
		            yield d["realm"]
		        for k, v in d.items():
		            if k == "realms" and isinstance(v, dict):
		                yield from v.keys()
		            else:
		                yield from names(v)
		    elif isinstance(d, list):
		        for v in d:
		            yield from names(v)
		print("\n".join(sorted(set(names(doc)))))
	PY
}
