# vulndb-listing.sh — sourced by dagger-smoke.sh and dagger-lifecycle.sh (needs $CLI and the
# repository as the working directory). serve_vulndb_listing DIR builds a grype database from the
# repository's advisory list into DIR/vulndb, writes it as a listing into DIR/listing (mero-release
# vulndb mirror) and serves that on 127.0.0.1: it sets listing_pid and listing_port, or prints the
# logs and returns 1. stop_vulndb_listing stops the server.
# shellcheck shell=bash

serve_vulndb_listing() {
  local dir=$1
  listing_port="" listing_pid=""
  if ! "$CLI" vulndb build --advisories vulndb/advisories.json --dir "$dir/vulndb" >"$dir/vulndb.log" 2>&1 ||
    ! "$CLI" vulndb mirror --dir "$dir/vulndb" --out "$dir/listing" >>"$dir/vulndb.log" 2>&1; then
    cat "$dir/vulndb.log"
    return 1
  fi
  python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$dir/listing" >"$dir/listing.log" 2>&1 &
  listing_pid=$!
  for _ in $(seq 100); do
    listing_port=$(sed -n 's/^Serving HTTP on .* port \([0-9][0-9]*\) .*/\1/p' "$dir/listing.log" | head -1)
    [ -n "$listing_port" ] && return 0
    sleep 0.1
  done
  cat "$dir/listing.log"
  stop_vulndb_listing
  return 1
}

stop_vulndb_listing() {
  [ -z "${listing_pid:-}" ] || kill "$listing_pid" 2>/dev/null
  listing_pid=""
}
