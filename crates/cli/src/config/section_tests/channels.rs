use super::super::testing::load;
use super::super::RawConfig;
use super::super::*;

#[test]
fn channels_are_off_by_default() {
    let c = load("", &[]).unwrap();
    assert!(!c.channels.any());
}

#[test]
fn slack_secrets_come_from_env_or_file() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("signing");
    std::fs::write(&secret_file, "s3cret\n").unwrap();
    let text = format!("[slack]\nchannel = \"#ops\"\nsigning_secret_file = {:?}\n", secret_file.display().to_string());
    let c = load(&text, &[("COUNTERSIGN_SLACK_BOT_TOKEN", "xoxb-1")]).unwrap();
    let slack = c.channels.slack.unwrap();
    assert_eq!(slack.bot_token.expose(), "xoxb-1");
    assert_eq!(slack.signing_secret.unwrap().expose(), "s3cret");
    assert_eq!(slack.api_base_url, "https://slack.com/api");
    assert!(!format!("{:?}", slack.bot_token).contains("xoxb"));
}

#[test]
fn incomplete_sections_name_their_key() {
    let err = load("[slack]\nbot_token = \"x\"\n", &[]).unwrap_err();
    assert!(err.to_string().starts_with("`slack.signing_secret`"), "{err}");
    let err = load("[teams]\napp_id = \"a\"\n", &[]).unwrap_err();
    assert!(err.to_string().starts_with("`teams.app_password`"), "{err}");
    let err = load("[[webhooks]]\nurl = \"http://127.0.0.1:1/h\"\n", &[]).unwrap_err();
    assert!(err.to_string().starts_with("`webhooks.secret`"), "{err}");
    let err = load("[[webhooks]]\nurl = \"ftp://x\"\nsecret = \"s\"\n", &[]).unwrap_err();
    assert!(err.to_string().starts_with("`webhooks.url`"), "{err}");
    let err = load("[[webhooks]]\nurl = \"http://x\"\nsecret = \"s\"\nevents = [\"nope\"]\n", &[]).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    assert!(RawConfig::parse("c.toml", "[slack]\nbot_tokn = \"x\"\n").is_err());
}

#[test]
fn the_deployment_example_has_only_known_keys() {
    let text = include_str!("../../../../../deploy/channels.toml");
    let raw = RawConfig::parse("deploy/channels.toml", text).unwrap();
    assert_eq!(raw.webhooks.len(), 2);
    assert!(raw.slack.is_some() && raw.teams.is_some());
}

#[test]
fn teams_and_webhooks_validate() {
    let c = load(
        "[teams]\napp_id = \"app\"\napp_password = \"pw\"\nconversation = \"19:x\"\n\
         [[webhooks]]\nurl = \"http://127.0.0.1:9/h\"\nsecret = \"k\"\nevents = [\"pending\"]\n",
        &[],
    )
    .unwrap();
    let teams = c.channels.teams.unwrap();
    assert_eq!(teams.token_url, "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token");
    assert!(matches!(teams.credential, TeamsCredential::Password(_)));
    assert_eq!(c.channels.webhooks[0].events, vec!["pending"]);
    assert_eq!(c.channels.webhooks[0].max_attempts, 10);
}
