use countersign_gateway::config::MapEnv;

use super::super::RawConfig;

#[test]
fn upstreams_need_exactly_one_of_url_and_command() {
    let ok = RawConfig::parse(
        "c.toml",
        "[mcp]\nhide_forbidden_tools = true\n[mcp.upstreams.web]\nurl = \"http://127.0.0.1:1/mcp\"\n[mcp.upstreams.fs]\ncommand = [\"server\", \"/tmp\"]\n",
    )
    .unwrap()
    .validate(&MapEnv::default())
    .unwrap();
    assert_eq!(ok.mcp.upstreams.len(), 2);
    assert!(ok.mcp.hide_forbidden_tools);
    for bad in [
        "[mcp.upstreams.x]\n",
        "[mcp.upstreams.x]\nurl = \"http://a\"\ncommand = [\"b\"]\n",
        "[mcp.upstreams.x]\nurl = \"ftp://a\"\n",
        "[mcp.upstreams.x]\ncommand = []\n",
        "[mcp.upstreams.x]\ncommand = [\"b\"]\nbearer_token = \"t\"\n",
        "[mcp.upstreams.x]\nurl = \"http://a\"\nca_file = \"/etc/hostname\"\n",
        "[mcp.upstreams.x]\nurl = \"https://a\"\nca_file = \"/nonexistent/ca.pem\"\n",
        "[mcp.upstreams.x]\nurl = \"https://a\"\nca_file = \"/etc/hostname\"\n",
        "[mcp.upstreams.\"a/b\"]\nurl = \"http://a\"\n",
    ] {
        let err = RawConfig::parse("c.toml", bad).unwrap().validate(&MapEnv::default()).unwrap_err();
        assert!(err.to_string().starts_with("`mcp.upstreams`"), "{bad}: {err}");
    }
    assert!(RawConfig::parse("c.toml", "[mcp.upstreams.x]\nurll = \"http://a\"\n").is_err());
    let secured = RawConfig::parse("c.toml", "[mcp.upstreams.x]\nurl = \"https://a/mcp\"\nbearer_token = \"s3cret\"\n")
        .unwrap()
        .validate(&MapEnv::default())
        .unwrap();
    let super::super::McpUpstream::Url(upstream) = &secured.mcp.upstreams["x"] else { panic!("a url upstream") };
    assert_eq!(upstream.bearer_token.as_ref().map(super::super::Secret::expose), Some("s3cret"));
    assert!(!format!("{secured:?}").contains("s3cret"), "the upstream's token must not show in Debug");
}
