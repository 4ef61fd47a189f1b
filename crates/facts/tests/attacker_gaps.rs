//! Classes of inputs a fresh-eyes attacker found read too kindly: each
//! test names the class and tries several members of it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_facts::derive;
use serde_json::{json, Value};

fn facts(payload: Value) -> countersign_facts::Facts {
    derive("shell.exec", &payload)
}

/// A command line's facts: (destructive, unresolved, parse_error).
fn shell(command: &str) -> (bool, bool, bool) {
    let s = facts(json!({ "command": command })).shell.unwrap();
    (s.destructive, s.unresolved, s.parse_error)
}

#[test]
fn bundled_short_options_of_database_clients_do_not_hide_sql() {
    for command in [
        "psql -Xc 'DROP TABLE users'",
        "psql -qc 'DROP TABLE users'",
        "psql -tAc 'DROP TABLE users'",
        "psql -1c 'DROP TABLE users'",
        "psql -d db -Xc 'DROP TABLE users'",
        "psql -XcDROP\\ TABLE\\ users",
        "psql db -X --command='DROP TABLE users'",
        "mysql -Be 'DROP TABLE users'",
        "mysql -ve 'DROP TABLE users'",
        "mysql -uroot -Bse 'DROP TABLE users'",
        "mariadb -Be 'DROP TABLE users'",
        "mysql --init-command='DROP TABLE users' db",
    ] {
        let f = facts(json!({ "command": command }));
        let sql = f.sql.unwrap_or_else(|| panic!("{command}: no sql"));
        assert!(sql.is_ddl && !sql.is_read_only, "{command}: {sql:?}");
    }
    // The value option ends the cluster: `-cX` is SQL `X`, not `-c -X`.
    let f = facts(json!({"command": "psql -cX"}));
    assert!(f.sql.unwrap().parse_error);
}

#[test]
fn mysql_command_line_sql_is_judged_in_every_reading() {
    let f = facts(json!({"argv": ["mysql", "-e", "SELECT '\\'; DROP TABLE users; -- '"]}));
    let sql = f.sql.unwrap();
    assert!(sql.dialect_ambiguous && sql.is_ddl && !sql.is_read_only, "{sql:?}");
    let f = facts(json!({"argv": ["mariadb", "-Be", "SELECT '\\'; DROP TABLE users; -- '"]}));
    assert!(f.sql.unwrap().is_ddl);
    // Plain text is still read-only.
    let f = facts(json!({"argv": ["mysql", "-e", "select 1"]}));
    assert!(f.sql.unwrap().is_read_only);
}

#[test]
fn other_database_clients_running_their_arguments_are_unresolved() {
    for argv in [
        json!(["clickhouse-client", "--query", "DROP TABLE users"]),
        json!(["clickhouse-client", "-q", "DROP TABLE users"]),
        json!(["cockroach", "sql", "-e", "DROP TABLE users"]),
        json!(["sqlcmd", "-Q", "DROP TABLE users"]),
        json!(["duckdb", "-c", "DROP TABLE users"]),
        json!(["pgcli", "-c", "DROP TABLE users"]),
        json!(["usql", "-c", "DROP TABLE users"]),
        json!(["snowsql", "-q", "DROP TABLE users"]),
        json!(["bq", "query", "DROP TABLE users"]),
        json!(["sqlplus", "u/p@db", "@drop.sql"]),
        json!(["isql", "dsn"]),
        json!(["redis-cli", "FLUSHALL"]),
    ] {
        let s = facts(json!({ "argv": argv })).shell.unwrap();
        assert!(s.unresolved, "{argv}");
    }
}

#[test]
fn kubectl_args_are_read_like_the_kubectl_argv() {
    for args in [
        json!(["exec", "pod", "--", "rm", "-rf", "/"]),
        json!(["exec", "-it", "pod", "-c", "app", "--", "sh", "-c", "rm -rf /"]),
        json!(["debug", "node/x", "-it", "--image=busybox", "--", "rm", "-rf", "/host"]),
        json!(["run", "x", "--image=busybox", "--", "rm", "-rf", "/"]),
    ] {
        for kind in ["k8s.apply", "kubectl.exec", "k8s.delete"] {
            let f = derive(kind, &json!({ "args": args }));
            assert!(f.shell.unwrap().destructive, "{kind} {args}");
            assert!(!f.kubectl.unwrap().verbs.is_empty(), "{kind} {args}");
        }
    }
    // Plugins and unknown subcommands run programs that cannot be seen.
    for args in [json!(["krew", "install", "x"]), json!(["foo", "bar"]), json!(["exec", "pod", "rm", "-rf", "/"])] {
        let f = derive("k8s.apply", &json!({ "args": args }));
        assert!(f.shell.unwrap().unresolved, "{args}");
    }
    let f = derive("k8s.apply", &json!({"args": ["apply", "-n", "prod", "-f", "x.yaml"]}));
    assert!(f.shell.is_none(), "{f:?}");
    let k = f.kubectl.unwrap();
    assert_eq!((k.verbs, k.namespaces, k.uses_files), (vec!["apply".to_owned()], vec!["prod".to_owned()], true));
    let f = derive("shell.exec", &json!({"command": "kubectl krew install evil"}));
    assert!(f.shell.unwrap().unresolved);
    assert!(!derive("shell.exec", &json!({"command": "kubectl get pods -A"})).shell.unwrap().unresolved);
}

#[test]
fn at_and_batch_run_their_stdin_as_a_script() {
    for command in [
        "at now <<< 'rm -rf /'",
        "echo 'rm -rf /' | at now",
        "echo 'rm -rf /' | at -m now + 1 minute",
        "batch <<< 'rm -rf /'",
        "at -f /tmp/job now",
        "printf 'rm -rf /' | /usr/bin/batch",
    ] {
        let (destructive, unresolved, parse_error) = shell(command);
        assert!(destructive || unresolved || parse_error, "{command}");
    }
    let f = facts(json!({"argv": ["at", "now"], "stdin": "rm -rf /srv", "stdin_sha256": "x"}));
    assert!(f.shell.unwrap().destructive);
    assert_eq!(shell("at -l"), (false, false, false));
}

#[test]
fn variables_that_load_code_make_the_command_unresolved() {
    for command in [
        "env BASH_ENV=/tmp/x bash -c true",
        "BASH_ENV=/tmp/x bash -c true",
        "ENV=/tmp/x sh -c true",
        "LD_PRELOAD=/tmp/x.so ls",
        "env LD_LIBRARY_PATH=/tmp ls",
        "PYTHONSTARTUP=/tmp/x python3 -c 1",
        "PERL5OPT=-Mx perl -e 1",
        "NODE_OPTIONS='--require /tmp/x.js' node -v",
        "PROMPT_COMMAND='rm -rf /' bash -i",
        "GIT_SSH_COMMAND='rm -rf /' git fetch",
        "PAGER='sh -c x' git log",
        "sudo LD_PRELOAD=/tmp/x.so ls",
        "export LD_PRELOAD=/tmp/x.so; ls",
        "PATH=/tmp:$PATH ls",
    ] {
        assert!(shell(command).1, "{command}");
    }
    assert_eq!(shell("LANG=C ls"), (false, false, false));
    assert_eq!(shell("env TZ=UTC date"), (false, false, false));
    assert!(!shell("export VERSION=$(date +%s); echo $VERSION").1);
    assert!(shell("export $N=/tmp/x.so; ls").1);
}

#[test]
fn alias_definitions_are_unresolved() {
    for command in ["alias x=rm; x -rf /", "alias x='rm'\nx -rf /", "alias -- x=rm"] {
        assert!(shell(command).1, "{command}");
    }
}

#[test]
fn more_destructive_classes() {
    for command in [
        "mkdosfs /dev/sdb1",
        "mkntfs -f /dev/sdb1",
        "mke2fs /dev/sdb1",
        "mkswap /dev/sdb2",
        "mkfs.xfs -f /dev/nvme0n1",
        "mkexfatfs /dev/sdc",
        "nvme format /dev/nvme0n1",
        "nvme sanitize -a 2 /dev/nvme0",
        "hdparm --user-master u --security-erase p /dev/sda",
        "hdparm --trim-sector-ranges 0:100 /dev/sda",
        "blkdiscard /dev/sda",
        "killall -9 postgres",
        "killall -KILL nginx",
        "killall -s KILL java",
        "pkill -KILL -u root",
        "pkill -9 -u app",
        "pkill -u root",
        "systemctl isolate rescue.target",
        "systemctl poweroff",
        "ip link set eth0 down",
        "ip l set dev eth0 down",
        "ifdown eth0",
        "ifconfig eth0 down",
        "git clean -ffdx",
        "git clean -fdx",
        "git clean -f -x",
        "truncate -s 0 /var/lib/postgresql/data/base/1/1234",
        "truncate -s0 /etc/passwd",
        "truncate --size=0 /usr/lib/libc.so.6",
        "tar --remove-files -czf /tmp/x.tgz /srv/data",
        "chattr -R +i /etc",
        "chattr +i /usr/bin",
        "userdel -r alice",
        "passwd -d root",
        "passwd -l root",
        "usermod -L root",
        "grm -rf /srv",
        "gdd if=/dev/zero of=/dev/sda",
        "gshred /dev/sda",
        "gchmod -R 777 /",
        "sudo gxargs grm -rf < list",
    ] {
        assert!(shell(command).0, "{command}");
    }
    for command in [
        "killall nginx",
        "pkill -HUP nginx",
        "git clean -n",
        "truncate -s 10M /tmp/x",
        "truncate -s 0 /tmp/x.log",
        "ip link show",
        "systemctl status web",
        "passwd alice",
        "grep root /etc/passwd",
        "chattr +i /srv/app/config",
    ] {
        assert!(!shell(command).0, "{command}");
    }
}

fn sql(statement: &str, dialect: &str) -> countersign_facts::SqlFacts {
    derive("sql.execute", &json!({"statement": statement, "dialect": dialect})).sql.unwrap()
}

#[test]
fn sql_that_runs_text_programs_or_server_files_runs_a_program() {
    for (statement, dialect) in [
        ("SELECT dblink_exec('host=x', 'DROP TABLE users')", "postgres"),
        ("SELECT * FROM dblink('host=x', 'DELETE FROM users RETURNING 1') AS t(x int)", "postgres"),
        ("SELECT query_to_xml('DELETE FROM users RETURNING 1', true, true, '')", "postgres"),
        ("SELECT sys_exec('rm -rf /')", "mysql"),
        ("SELECT sys_eval('id')", "mysql"),
        ("SELECT lo_import('/etc/passwd')", "postgres"),
        ("SELECT lo_export(1234, '/tmp/x')", "postgres"),
        ("SELECT pg_read_file('/etc/shadow')", "postgres"),
        ("SELECT load_extension('/tmp/evil.so')", "sqlite"),
        ("SELECT load_file('/etc/passwd')", "mysql"),
        ("EXEC xp_cmdshell 'whoami'", "mssql"),
        ("EXEC sp_executesql N'DROP TABLE users'", "mssql"),
        ("COPY users TO '/tmp/users.csv'", "postgres"),
        ("COPY users FROM '/etc/passwd'", "postgres"),
        ("ATTACH DATABASE '/etc/cron.d/x' AS x", "sqlite"),
    ] {
        let f = sql(statement, dialect);
        assert!(f.runs_program && !f.is_read_only, "{statement}: {f:?}");
    }
    let f = sql("PRAGMA writable_schema = 1", "sqlite");
    assert!(f.is_ddl && !f.is_read_only, "{f:?}");
    assert!(!sql("COPY users TO STDOUT", "postgres").runs_program);
    assert!(!sql("SELECT lower(name) FROM users", "postgres").runs_program);
}

#[test]
fn rows_every_where_matches_are_deleted_without_where() {
    for statement in [
        "DELETE FROM users WHERE id IS NULL OR id IS NOT NULL",
        "DELETE FROM users WHERE (id IS NOT NULL) OR (id IS NULL)",
        "DELETE FROM users WHERE active OR NOT active",
        "DELETE FROM users WHERE id = 1 OR NOT id = 1",
        "DELETE FROM users WHERE name = 'x' OR (id IS NULL OR id IS NOT NULL)",
        "UPDATE users SET admin = true WHERE id > 5 OR NOT id > 5",
    ] {
        let f = sql(statement, "postgres");
        assert!(f.delete_without_where || f.update_without_where, "{statement}: {f:?}");
    }
    assert!(!sql("DELETE FROM users WHERE id IS NULL OR name IS NOT NULL", "postgres").delete_without_where);
    assert!(!sql("DELETE FROM users WHERE id = 1", "postgres").delete_without_where);
    let f = sql("INSERT OVERWRITE TABLE users SELECT * FROM staging", "hive");
    assert!(f.delete_without_where || f.parse_error, "{f:?}");
    let f = sql("INSERT OVERWRITE TABLE users SELECT * FROM staging", "generic");
    assert!(f.delete_without_where || f.parse_error, "{f:?}");
}
