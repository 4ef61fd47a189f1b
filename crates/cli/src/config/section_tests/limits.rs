use super::super::testing::load;
use super::super::*;

#[test]
fn defaults_and_values() {
    let c = load("", &[]).unwrap();
    assert_eq!(c.limits, LimitsConfig::default());
    assert!(c.limits.trusted_proxies.is_empty(), "no proxy is trusted unless configured");
    let c = load(
        "[server]\nunauthenticated_burst = 5\nunauthenticated_per_minute = 10\nrefusal_window = \"10s\"\nrefusals_recorded_per_window = 2\n\
         tracked_sources = 100\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n",
        &[],
    )
    .unwrap();
    assert_eq!(c.limits.unauthenticated_burst, 5);
    assert_eq!(c.limits.unauthenticated_per_minute, 10);
    assert_eq!(c.limits.refusal_window, Duration::from_secs(10));
    assert_eq!(c.limits.recorded_per_window, 2);
    assert_eq!(c.limits.tracked_sources, 100);
    assert_eq!(c.limits.trusted_proxies.len(), 2);
    let c = load("", &[("COUNTERSIGN_SERVER_UNAUTHENTICATED_BURST", "7")]).unwrap();
    assert_eq!(c.limits.unauthenticated_burst, 7);
}

#[test]
fn bad_values_name_their_key() {
    for (text, key) in [
        ("[server]\nunauthenticated_burst = 0\n", "server.unauthenticated_burst"),
        ("[server]\nunauthenticated_per_minute = 0\n", "server.unauthenticated_per_minute"),
        ("[server]\nrefusal_window = \"0s\"\n", "server.refusal_window"),
        ("[server]\ntracked_sources = 1\n", "server.tracked_sources"),
        ("[server]\nrefusals_recorded_per_window = 0\n", "server.refusals_recorded_per_window"),
        ("[server]\ntrusted_proxies = [\"10.0.0.0/33\"]\n", "server.trusted_proxies"),
        ("[server]\ntrusted_proxies = [\"proxy.local\"]\n", "server.trusted_proxies"),
    ] {
        let err = load(text, &[]).unwrap_err();
        assert!(err.to_string().starts_with(&format!("`{key}`")), "{text}: {err}");
    }
    assert!(load("[server]\nunauthenticated_brust = 3\n", &[]).is_err(), "unknown keys are errors");
}

#[test]
fn networks_contain_their_addresses() {
    let net = IpNet::parse("10.0.0.0/8").unwrap();
    assert!(net.contains("10.1.2.3".parse().unwrap()));
    assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
    assert!(!net.contains("11.0.0.1".parse().unwrap()));
    let one = IpNet::parse("::1").unwrap();
    assert!(one.contains("::1".parse().unwrap()));
    assert!(!one.contains("::2".parse().unwrap()));
    assert!(IpNet::parse("0.0.0.0/0").unwrap().contains("1.2.3.4".parse().unwrap()));
    assert!(IpNet::parse("1.2.3.4/x").is_none());
}
