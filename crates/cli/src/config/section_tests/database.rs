use super::super::*;
use crate::config::database::validate;
use crate::config::{Config, MapEnv, Overrides};

#[test]
fn sqlite_is_the_default() {
    let c = Config::load(&Overrides::default(), &MapEnv::default()).unwrap();
    assert_eq!(c.database, DatabaseConfig::default());
    assert_eq!(c.database.postgres_url(), None);
}

#[test]
fn the_url_comes_from_env_or_flag_and_never_shows() {
    let env = MapEnv::new([("COUNTERSIGN_DATABASE_URL", "postgres://cs:hunter2@db:5432/cs")]);
    let c = Config::load(&Overrides::default(), &env).unwrap();
    assert_eq!(c.database.postgres_url(), Some("postgres://cs:hunter2@db:5432/cs"));
    assert!(!format!("{c:?}").contains("hunter2"), "the password must not show in Debug");

    let flag = Overrides { database: Some("postgresql://other/db".into()), ..Overrides::default() };
    let c = Config::load(&flag, &env).unwrap();
    assert_eq!(c.database.postgres_url(), Some("postgresql://other/db"));
}

#[test]
fn bad_urls_are_refused_without_echoing_them() {
    let env = MapEnv::new([("COUNTERSIGN_DATABASE_URL", "mysql://u:hunter2@db/x")]);
    let err = Config::load(&Overrides::default(), &env).unwrap_err().to_string();
    assert!(err.contains("database.url"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    let raw = RawDatabase { pool_size: Some(0), ..RawDatabase::default() };
    assert!(validate(raw).is_err());
}

#[test]
fn the_url_may_come_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("url");
    std::fs::write(&file, "postgres://cs:pw@db/cs\n").unwrap();
    let raw = RawDatabase { url_file: Some(file), ..RawDatabase::default() };
    assert_eq!(validate(raw).unwrap().postgres_url(), Some("postgres://cs:pw@db/cs"));
}
