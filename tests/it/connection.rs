//! Connection settings as the source products write them, on real servers:
//! `?ssl=true|false` in `DATABASE_URL` (and unknown parameters named), the
//! periodic health check feeding `/readyz` and the metrics, the pool's
//! create timeout, and the database's search path for unqualified SQL.

use std::process::Command;
use std::time::Duration;

use devx::config::Config;
use devx::db::{Db, Queryable};
use reqwest::StatusCode;

use crate::app::TestApp;
use crate::harness::{TestDb, devx_command, server_config};
use crate::support::one;

/// `db` as a `postgres://` URL followed by `query`.
fn url_of(db: &TestDb, query: &str) -> String {
    use tokio_postgres::config::Host;
    let server = server_config();
    let host = match server.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".into(),
    };
    let port = server.get_ports().first().copied().unwrap_or(5432);
    let user = server.get_user().unwrap_or("postgres");
    format!("postgresql://{user}@{host}:{port}/{}{query}", db.name())
}

fn config_with(vars: &[(&str, String)]) -> Result<Config, devx::config::ConfigError> {
    Config::from_lookup(&|name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()))
}

fn run(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// Whether the pool's connections to the server are encrypted.
async fn encrypted(config: &Config) -> bool {
    let devx::config::DbSource::Explicit(target) = &config.database.source else { panic!("a URL was given") };
    let pool = Db::connect(&config.database, target).await.expect("pool connects");
    let client = pool.client().await.unwrap();
    let ssl: bool = client.query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.unwrap();
    drop(client);
    pool.close();
    ssl
}

#[tokio::test]
async fn the_ssl_alias_is_read_and_unknown_url_parameters_are_named() {
    let db = TestDb::migrated().await;
    let admin = crate::harness::admin_client().await;
    let server_has_tls: String = one(&admin, "SHOW ssl", &[]).await;

    // The production URL of the source product: ssl=true with sslmode=require.
    let tls = config_with(&[("DATABASE_URL", url_of(&db, "?ssl=true&sslmode=require"))]).unwrap();
    assert_eq!(tls.database.ssl_mode, Some(devx::config::SslMode::Require));
    let plain = config_with(&[("DATABASE_URL", url_of(&db, "?ssl=false&application_name=spec"))]).unwrap();
    assert_eq!(plain.database.ssl_mode, Some(devx::config::SslMode::Disable));
    let alone = config_with(&[("DATABASE_URL", url_of(&db, "?ssl=true"))]).unwrap();
    assert_eq!(alone.database.ssl_mode, Some(devx::config::SslMode::Require));
    assert!(!encrypted(&plain).await, "ssl=false: a plain connection");
    if server_has_tls == "on" {
        assert!(encrypted(&tls).await, "ssl=true&sslmode=require: an encrypted connection");
    }

    // Through the binary: exit 2 naming what is wrong, before any connection.
    let status = |query: &str| {
        let mut cmd = devx_command();
        cmd.env("DATABASE_URL", url_of(&db, query)).args(["migrate", "status"]);
        run(&mut cmd)
    };
    let (code, out) = status("?ssl=false");
    assert_eq!(code, 0, "{out}");
    let (code, out) = status("?ssl=false&sslmode=disable&connect_timeout=5");
    assert_eq!(code, 0, "{out}");
    let (code, out) = status("?ssl=true&sslmode=disable");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("ssl=true but sslmode=disable"), "{out}");
    let (code, out) = status("?sslmode=disable&poolSize=5&timezone=UTC");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("parameters devx does not know: poolSize, timezone"), "{out}");
    assert!(!out.contains("postgres@"), "the URL itself is not printed: {out}");
    let (code, out) = status("?ssl=maybe");
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("ssl=maybe"), "{out}");
}

#[tokio::test]
async fn the_specs_pool_and_logging_variables_are_honoured_or_named() {
    let c = config_with(&[
        ("DB_CONNECTION_TIMEOUT", "2000".into()),
        ("DB_CREATE_TIMEOUT", "3000".into()),
        ("DB_DESTROY_TIMEOUT", "5000".into()),
        ("DB_REAP_INTERVAL", "1000".into()),
        ("DB_HEALTH_CHECK_ENABLED", "true".into()),
        ("DB_HEALTH_CHECK_INTERVAL", "30000".into()),
        ("DB_LOGGING_ENABLED", "true".into()),
        ("DB_LOGGING_LEVEL", "info".into()),
        ("DB_LOG_QUERIES", "false".into()),
        ("DB_LOG_SLOW_QUERIES", "true".into()),
    ])
    .unwrap();
    let d = &c.database;
    assert_eq!((d.connect_timeout, d.create_timeout), (Duration::from_secs(2), Duration::from_secs(3)));
    assert_eq!(d.reap_interval, Duration::from_secs(1));
    assert_eq!(d.health_check_interval, Some(Duration::from_secs(30)));
    let log = d.statement_log;
    assert_eq!((log.all, log.slow, log.level), (false, true, devx::config::LogLevel::Info));

    let defaults = config_with(&[]).unwrap();
    let d = &defaults.database;
    assert_eq!(d.create_timeout, d.connect_timeout, "unset: the connect timeout");
    assert_eq!(d.reap_interval, Duration::from_secs(10));
    assert_eq!(d.health_check_interval, None);
    assert!(!d.statement_log.all && d.statement_log.slow);
    let off = config_with(&[("DB_LOGGING_ENABLED", "false".into()), ("DB_LOG_QUERIES", "true".into())]).unwrap();
    assert!(!off.database.statement_log.all && !off.database.statement_log.slow);

    let bad = config_with(&[("DB_LOGGING_LEVEL", "loud".into()), ("DB_CREATE_TIMEOUT", "soon".into())]).unwrap_err();
    let named: Vec<&str> = bad.problems.iter().map(|p| p.variable.as_str()).collect();
    assert_eq!(named, ["DB_LOGGING_LEVEL", "DB_CREATE_TIMEOUT"], "{bad}");

    // What has nothing to map onto is a warning naming it, through the binary.
    let db = TestDb::migrated().await;
    let mut cmd = devx_command();
    cmd.env("DATABASE_URL", db.url()).env("DB_DESTROY_TIMEOUT", "5000").env("DB_LOG_QUERIES", "true");
    let (code, out) = run(cmd.args(["config", "check"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("DB_DESTROY_TIMEOUT is set but devx ignores it"), "{out}");
    assert!(!out.contains("DB_LOG_QUERIES is not a devx variable"), "{out}");
}

#[tokio::test]
async fn the_periodic_health_check_feeds_readyz_and_the_metrics() {
    let app = TestApp::spawn_private("devx-outage-", |_| {}).await;
    assert_eq!(devx::health::check_once(&app.state, Duration::from_secs(5)).await, None);
    let (status, _) = app.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK);
    let metrics = app.request(reqwest::Method::GET, "/metrics", None).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("devx_database_health_check_up 1"), "{metrics}");

    crate::outage::take_database_down(&app).await;
    let error = devx::health::check_once(&app.state, Duration::from_secs(5)).await;
    assert!(error.is_some());
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body["reason"].as_str().unwrap().contains("periodic database health check failed"), "{body}");
    let metrics = app.request(reqwest::Method::GET, "/metrics", None).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("devx_database_health_check_up 0"), "{metrics}");

    crate::outage::bring_database_back(&app).await;
    assert_eq!(devx::health::check_once(&app.state, Duration::from_secs(5)).await, None);
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn unqualified_sql_finds_devx_tables_in_a_new_session() {
    let db = TestDb::empty().await;
    let mut cmd = devx_command();
    cmd.env("DATABASE_URL", db.url()).args(["migrate", "up"]);
    let (code, out) = run(&mut cmd);
    assert_eq!(code, 0, "{out}");
    // A session that starts after the migration, as psql's would.
    let client = db.client().await;
    let path: String = one(&client, "SHOW search_path", &[]).await;
    assert_eq!(path, "devx, templates, public");
    let contexts: i64 = one(&client, "SELECT count(*) FROM project_contexts", &[]).await;
    let categories: i64 = one(&client, "SELECT count(*) FROM categories", &[]).await;
    assert_eq!((contexts, categories >= 0), (0, true));
    let qualified: i64 = one(&client, "SELECT count(*) FROM devx.users", &[]).await;
    assert_eq!(qualified, 0, "schema-qualified SQL works as before");
    drop(client);

    // Down: the setting goes with the migration.
    let mut cmd = devx_command();
    cmd.env("DATABASE_URL", db.url()).args(["migrate", "down", "--to", "20261206020000"]);
    let (code, out) = run(&mut cmd);
    assert_eq!(code, 0, "{out}");
    let client = db.client().await;
    let path: String = one(&client, "SHOW search_path", &[]).await;
    assert_eq!(path, "\"$user\", public");
}

/// Runs openssl with `args` in `dir`; panics with its output when it fails.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA, a server certificate for 127.0.0.2 and a client certificate for
/// the role `user`, signed by it, made with openssl in `dir`: `ca.crt`,
/// `server.crt`/`server.key`, `client.crt`/`client.key`; and a second CA
/// (`other-ca.crt`) that signed none of them.
fn make_certificates(dir: &std::path::Path, user: &str) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    for ca in ["ca", "other-ca"] {
        let (key, crt, subject) = (format!("{ca}.key"), format!("{ca}.crt"), format!("/CN=devx test {ca}"));
        let mut args = vec!["req", "-x509", "-days", "2", "-subj", &subject, "-keyout", &key, "-out", &crt];
        args.extend(ec);
        args.extend([
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(dir, &args);
    }
    for (name, subject, ext) in [
        ("server", "/CN=127.0.0.2".to_string(), "subjectAltName=IP:127.0.0.2\nextendedKeyUsage=serverAuth\n"),
        ("client", format!("/CN={user}"), "extendedKeyUsage=clientAuth\n"),
    ] {
        let (key, csr, crt, extfile) =
            (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"), format!("{name}.ext"));
        std::fs::write(dir.join(&extfile), format!("basicConstraints=CA:FALSE\n{ext}")).unwrap();
        let mut args = vec!["req", "-subj", &subject, "-keyout", &key, "-out", &csr];
        args.extend(ec);
        openssl(dir, &args);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &extfile,
                "-out",
                &crt,
            ],
        );
    }
}

#[tokio::test]
async fn verify_full_with_our_own_ca_and_a_client_certificate() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Some(private) = crate::harness::PrivateServer::start("devx-tls").await else {
        eprintln!("skipped: no PostgreSQL server binaries on this machine");
        return;
    };
    let client = private.client().await;
    let user: String = one(&client, "SELECT current_user::text", &[]).await;
    let data: String = one(&client, "SHOW data_directory", &[]).await;
    let hba: String = one(&client, "SHOW hba_file", &[]).await;
    let data = std::path::PathBuf::from(data);
    let owner = std::fs::metadata(&data).unwrap();

    // The server: our CA's certificate for 127.0.0.2, client certificates
    // required on TCP; the unix socket stays as it was.
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path(), &user);
    for file in ["server.crt", "server.key", "ca.crt"] {
        let to = data.join(file);
        std::fs::copy(certs.path().join(file), &to).unwrap();
        std::os::unix::fs::chown(&to, Some(owner.uid()), Some(owner.gid())).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let rules = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, format!("hostssl all all 127.0.0.0/8 cert\nhost all all 127.0.0.0/8 reject\n{rules}"))
        .unwrap();
    for (name, value) in [
        ("ssl", "on"),
        ("ssl_cert_file", "server.crt"),
        ("ssl_key_file", "server.key"),
        ("ssl_ca_file", "ca.crt"),
        ("listen_addresses", "127.0.0.2"),
    ] {
        client.batch_execute(&format!("ALTER SYSTEM SET {name} = '{value}'")).await.unwrap();
    }
    drop(client);
    let crate::harness::PrivateServer { dir, server, .. } = private;
    server.shutdown().await;
    let private = crate::harness::PrivateServer::start_in(dir).await.expect("the private server starts again");

    let path = |f: &str| certs.path().join(f).display().to_string();
    let url = format!("postgresql://{user}@127.0.0.2:5432/postgres");
    let connect = async |vars: &[(&str, String)]| -> Result<bool, String> {
        let config = config_with(vars).map_err(|e| e.to_string())?;
        let devx::config::DbSource::Explicit(target) = &config.database.source else { panic!("a URL") };
        let pool = Db::connect(&config.database, target).await.map_err(|e| e.to_string())?;
        let client = pool.client().await.map_err(|e| e.to_string())?;
        let ssl: bool =
            client.query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.unwrap();
        drop(client);
        pool.close();
        Ok(ssl)
    };

    // Variables: CA and client certificate; the CA alone means verify-full.
    let with_env = [
        ("DATABASE_URL", url.clone()),
        ("DB_SSL_ROOT_CERT", path("ca.crt")),
        ("DB_SSL_CERT", path("client.crt")),
        ("DB_SSL_KEY", path("client.key")),
    ];
    assert_eq!(config_with(&with_env).unwrap().database.ssl_mode, Some(devx::config::SslMode::VerifyFull));
    assert_eq!(connect(&with_env).await, Ok(true), "verified, encrypted, signed in by certificate");
    // The same in the URL, as libpq writes it.
    let in_url = format!(
        "{url}?sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
        path("ca.crt"),
        path("client.crt"),
        path("client.key")
    );
    assert_eq!(connect(&[("DATABASE_URL", in_url)]).await, Ok(true));

    // Without the client certificate the server refuses; with another CA
    // the server's certificate does not verify.
    let no_client = [("DATABASE_URL", url.clone()), ("DB_SSL_ROOT_CERT", path("ca.crt"))];
    let refused = connect(&no_client).await.unwrap_err();
    assert!(refused.contains("certificate") || refused.contains("pg_hba"), "{refused}");
    let other_ca = [
        ("DATABASE_URL", url.clone()),
        ("DB_SSL_ROOT_CERT", path("other-ca.crt")),
        ("DB_SSL_CERT", path("client.crt")),
        ("DB_SSL_KEY", path("client.key")),
    ];
    let unverified = connect(&other_ca).await.unwrap_err();
    assert!(unverified.contains("certificate"), "{unverified}");

    // A missing file or half a client certificate is a configuration
    // problem naming the variable.
    let problems = config_with(&[
        ("DATABASE_URL", url.clone()),
        ("DB_SSL_ROOT_CERT", path("missing.crt")),
        ("DB_SSL_CERT", path("client.crt")),
    ])
    .unwrap_err();
    let named: Vec<&str> = problems.problems.iter().map(|p| p.variable.as_str()).collect();
    assert_eq!(named, ["DB_SSL_ROOT_CERT", "DB_SSL_KEY"], "{problems}");
    private.stop().await;
}
