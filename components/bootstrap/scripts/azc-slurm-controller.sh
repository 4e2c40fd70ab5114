#!/usr/bin/env bash
# azc-slurm-controller: run slurmctld (and, with accounting, slurmdbd with MariaDB) on the login node.
#
# The configuration files (/etc/slurm/{slurm,topology,gres,cgroup,plugstack}.conf) were rendered from
# the cluster spec into this node's cloud-init (components/bootstrap/slurm.py); GPU nodes fetch them
# from here (configless). This script installs munge and the pinned Slurm, installs the cluster's munge
# key, creates the slurm user and directories, and starts the daemons. Idempotent: every boot.
#
# Accounting uses MariaDB on this node by default rather than Azure Database for MySQL: no extra resource,
# no network path or password to manage outside the node (slurmdbd talks to it over its local socket), and
# the database lives and dies with the cluster's controller. AZC_SLURMDBD_STORAGE_* point slurmdbd at
# another database server instead (see accounting()): with `slurm.accounting.database: mysql`, Azure
# Database for MySQL flexible server over TLS (components/accounting_db.py), which outlives this VM.
#
# Usage: azc-slurm-controller.sh
set -euo pipefail
AZC_TAG=azc-slurm-controller
# shellcheck source=azc-lib.sh
. "${AZC_LIB:-$(dirname "${BASH_SOURCE[0]}")/azc-lib.sh}"
# shellcheck source=azc-slurm-lib.sh
. "${AZC_SLURM_LIB:-$(dirname "${BASH_SOURCE[0]}")/azc-slurm-lib.sh}"

SLURM_USER="${AZC_SLURM_USER:-slurm}"
SACCTMGR="${SACCTMGR:-sacctmgr}"
MYSQL="${MYSQL:-mysql}"

# accounting: slurmdbd, its database and this cluster's record in it. The database is MariaDB on this node
# unless AZC_SLURMDBD_STORAGE_HOST names another server (the seam for a managed MySQL): then its port,
# user, password file and TLS CA come from AZC_SLURMDBD_STORAGE_{PORT,USER,PASS_FILE,CA}, and making that
# server's database and user is the deployment's job, not this script's.
accounting() {
    local conf="$R/etc/slurm/slurmdbd.conf" pass host="${AZC_SLURMDBD_STORAGE_HOST:-localhost}"
    local user="${AZC_SLURMDBD_STORAGE_USER:-slurm}" innodb
    if [[ "$host" == localhost ]]; then
        have mariadbd || have mysqld || DEBIAN_FRONTEND=noninteractive "$APT_GET" install -y -q mariadb-server >&2
        # Slurm's recommended InnoDB settings (accounting.html; slurmdbd logs "Database settings not
        # recommended values" below half of them: as_mysql's _check_database_variables), and snapshot
        # isolation off: MariaDB 11.8 turns it on, and slurmdbd 26.05 says it "will cause slurmdbd to fatal
        # when a write conflicts" (`loose-`: a MariaDB older than 10.6.18 has no such variable and skips it)
        innodb="$(printf '%s\n' '[mysqld]' innodb_buffer_pool_size=1G innodb_log_file_size=64M \
            innodb_lock_wait_timeout=900 loose-innodb_snapshot_isolation=OFF |
            write_if_changed "$R/etc/mysql/mariadb.conf.d/60-azcluster-slurmdbd.cnf" 0644)"
        [[ "$innodb" == unchanged ]] || "$SYSTEMCTL" restart mariadb >&2
        "$SYSTEMCTL" enable --now mariadb >&2
    fi
    if [[ ! -s "$conf" ]]; then
        if [[ "$host" == localhost ]]; then
            pass="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
            "$MYSQL" -u root <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS '$user'@'localhost' IDENTIFIED BY '$pass';
ALTER USER '$user'@'localhost' IDENTIFIED BY '$pass';
GRANT ALL ON slurm_acct_db.* TO '$user'@'localhost';
SQL
        else
            pass="$(cat "${AZC_SLURMDBD_STORAGE_PASS_FILE:?the external database needs a password file}")"
        fi
        umask 077
        {
            echo "AuthType=auth/munge"
            echo "DbdHost=localhost"
            echo "SlurmUser=$SLURM_USER"
            echo "LogFile=${AZC_SLURM_LOG_DIR:-/var/log/slurm}/slurmdbd.log"
            echo "PidFile=/run/slurm/slurmdbd.pid"
            echo "StorageType=accounting_storage/mysql"
            echo "StorageHost=$host"
            [[ -z "${AZC_SLURMDBD_STORAGE_PORT:-}" ]] || echo "StoragePort=$AZC_SLURMDBD_STORAGE_PORT"
            echo "StorageUser=$user"
            echo "StoragePass=$pass"
            echo "StorageLoc=slurm_acct_db"
            # TLS to a database server elsewhere (slurmdbd.conf(5) StorageParameters SSL_CA)
            [[ -z "${AZC_SLURMDBD_STORAGE_CA:-}" ]] || echo "StorageParameters=SSL_CA=$AZC_SLURMDBD_STORAGE_CA"
        } >"$conf"
        chown "$SLURM_USER:" "$conf"
        chmod 0600 "$conf"
    fi
    "$SYSTEMCTL" enable slurmdbd >&2
    "$SYSTEMCTL" restart slurmdbd >&2
    # slurmctld must find slurmdbd answering, or it logs connection errors; it records its cluster in the
    # database itself when it first registers (seen on 24.11.5).
    for _ in $(seq 60); do "$SACCTMGR" -n show cluster >/dev/null 2>&1 && break; sleep 1; done
}

# state_dir: slurmctld's StateSaveLocation as slurm.conf says (components/bootstrap/slurm.py state_save_dir:
# on the shared home, so a rebuilt login node finds the queue and running jobs where the old one left them).
# On the shared home it is used only once the share is mounted: a directory made on the OS disk under the
# mount point would hide (and later be hidden by) the real state. The slurm user's UID on a fresh VM may
# not be the old one's (useradd --system picks the next free id), so the state is handed to it each start.
state_dir() {
    local dir mount="${AZC_HOME_MOUNT:-/home}" waited=0
    dir="$({ sed -n 's/^StateSaveLocation=//p' "$R/etc/slurm/slurm.conf" 2>/dev/null || true; } | tail -n 1)"
    dir="${dir:-/var/spool/slurmctld}"
    if [[ -n "${AZC_HOME_SOURCE:-}" && "$dir/" == "${mount%/}/"* ]]; then
        until mountpoint -q "$R$mount"; do
            if ((waited >= ${AZC_HOME_WAIT_S:-900})); then
                log "the shared home is not mounted at $mount after ${waited}s: slurmctld's state lives there; not starting"
                exit 1
            fi
            sleep 5
            waited=$((waited + 5))
        done
    fi
    install -d -m 0755 "$R$(dirname "$dir")"
    install -d -o "$SLURM_USER" -m 0700 "$R$dir"
    chown -R "$SLURM_USER:" "$R$dir"
    if [[ -e "$R$dir/job_state" ]]; then
        log "slurmctld's state found in $dir: queued and running jobs are taken back"
    fi
    recover_options "$dir"
}

# recover_options: slurmctld saves job_state within seconds of a change, but assoc_usage (fair-share usage)
# only at its periodic checkpoint (save_all_state, every few minutes) and when it stops. A login VM lost
# before its controller's first checkpoint leaves state with jobs and no assoc_usage, and Slurm 26.05 refuses
# to start on that ("fatal: No Assoc usage file (<dir>/assoc_usage) to recover"; 24.11 goes on), so the
# rebuilt login node would never answer. `slurmctld -i` (ignore state errors) starts with the jobs and empty
# usage: set only in that case, and only for this start (cleared once slurmctld answers, below), as
# SLURMCTLD_OPTIONS in /etc/default/slurmctld, an EnvironmentFile of Debian's and SchedMD's slurmctld.service.
recover_options() {
    local dir="$1" opts=""
    if [[ -e "$R$dir/clustername" && ! -e "$R$dir/assoc_usage" ]]; then
        opts="-i"
        log "slurmctld's state in $dir has no assoc_usage (the last controller was lost before it saved one): starting once with -i; fair-share usage starts again from zero"
    fi
    slurmctld_options "$opts"
}

slurmctld_options() {
    printf '# Written by azc-slurm-controller.sh (recover_options)\nSLURMCTLD_OPTIONS="%s"\n' "$1" |
        write_if_changed "$R/etc/default/slurmctld" 0644 >/dev/null
}

# mpi_default: MpiDefault=pmix only where this Slurm build has the PMIx plugin; otherwise every plain srun
# would fail ("Invalid MPI type 'pmix'"), so set none and say why (log, /var/lib/azcluster/slurm-mpi.json).
# Nodes fetch slurm.conf from here (configless) and run the same pinned version.
mpi_default() {
    local conf="$R/etc/slurm/slurm.conf" marker="# azc: this Slurm build has no PMIx plugin"
    [[ -w "$conf" ]] || return 0
    if [[ "$(mpi_report "$MPI_REPORT")" == none ]]; then
        sed -i "s/^MpiDefault=pmix\$/MpiDefault=none $marker/" "$conf"
    else
        sed -i "s/^MpiDefault=none $marker\$/MpiDefault=pmix/" "$conf"
    fi
}

# mail_prog: slurmctld checks MailProg (default /bin/mail, else /usr/bin/mail) at start and logs
# "error: Configured MailProg is invalid" on every start where neither exists, as on images without a
# mailer. There, --mail-user requests have nowhere to go: say so once and point MailProg at /bin/true.
mail_prog() {
    local conf="$R/etc/slurm/slurm.conf"
    [[ -w "$conf" ]] || return 0
    grep -q '^MailProg=' "$conf" && return 0
    [[ -x "$R/bin/mail" || -x "$R/usr/bin/mail" ]] && return 0
    echo "MailProg=/bin/true # azc: no mail program on this host: sbatch --mail-user sends nothing" >>"$conf"
    log "no mail program on this host: Slurm job e-mail (--mail-user) is off"
}

slurm_install slurmctld
mpi_default
mail_prog
munge_setup
[[ -e "$R/etc/slurm/plugstack.local.conf" ]] || plugstack_local ""
id "$SLURM_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$SLURM_USER"
install -d -o "$SLURM_USER" -m 0755 "$R/var/log/slurm" "$R/run/slurm"
state_dir
if [[ "${AZC_SLURM_ACCOUNTING:-0}" == 1 ]]; then
    accounting
fi
"$SYSTEMCTL" enable slurmctld >&2
"$SYSTEMCTL" restart slurmctld >&2
for _ in $(seq 60); do "$SCONTROL" ping >/dev/null 2>&1 && break; sleep 2; done
slurmctld_options "" # -i was for the start above only: a later restart must not skip unreadable state
# Drain the unclaimed slots before any job can be placed on them (azc-slurm-reaper.sh).
"$(dirname "${BASH_SOURCE[0]}")/azc-slurm-reaper.sh" || log "the first reaper run failed; its timer retries"
"$SYSTEMCTL" enable --now azc-slurm-reaper.timer >&2
log "slurmctld is running; GPU nodes join by themselves as they boot"
