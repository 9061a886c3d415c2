# Shared by scripts/pg-start.sh and scripts/mariadb-start.sh (sourced, not run): the
# pieces of starting a throwaway database server that do not depend on the engine.

# server_owner OVERRIDE SYSTEM_USER FALLBACK_USER WHY
# Sets OWNER (who runs the server) and as_owner (the command prefix to run as OWNER).
# Servers refuse to run as root: as root, OVERRIDE if set, else SYSTEM_USER when it
# exists (the distribution's own), else FALLBACK_USER, created here as a system user.
server_owner() {
    local override="$1" system_user="$2" fallback="$3" why="$4"
    as_owner=()
    if [[ "$(id -u)" -eq 0 ]]; then
        OWNER="$override"
        if [[ -z "$OWNER" ]]; then
            if id "$system_user" >/dev/null 2>&1; then
                OWNER="$system_user"
            else
                OWNER="$fallback"
                if ! id "$OWNER" >/dev/null 2>&1; then
                    log "creating system user $OWNER ($why)"
                    useradd --system --no-create-home --home-dir /nonexistent \
                        --shell /usr/sbin/nologin "$OWNER"
                fi
            fi
        fi
        as_owner=(runuser -u "$OWNER" --)
    else
        OWNER="$(id -un)"
    fi
}

# free_port: a TCP port free on 127.0.0.1 right now (the caller retries on a race).
free_port() {
    local python
    python="$(command -v python3 || command -v python)"
    "$python" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}
