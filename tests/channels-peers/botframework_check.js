// Asks the Bot Framework SDK's own token validation (botframework-connector,
// the package botbuilder uses) whether it accepts each token, with the
// OpenID metadata pointed at the test's stand-in. The tests require that
// countersign accepts exactly the tokens the SDK accepts.
// stdin: {"metadata": url, "app_id": "...", "cases": [{"token", "serviceUrl", "channelId"}]}
// stdout: JSON array of {"ok": bool, "error": string|null}.
const connector = require("botframework-connector");

async function main() {
    let input = "";
    for await (const chunk of process.stdin) input += chunk;
    const { metadata, app_id, cases } = JSON.parse(input);
    connector.ChannelValidation.OpenIdMetadataEndpoint = metadata;
    const credentials = new connector.SimpleCredentialProvider(app_id, "unused");
    const out = [];
    for (const c of cases) {
        const activity = { type: "invoke", serviceUrl: c.serviceUrl, channelId: c.channelId };
        try {
            await connector.JwtTokenValidation.authenticateRequest(activity, c.token ? `Bearer ${c.token}` : "", credentials, "");
            out.push({ ok: true, error: null });
        } catch (e) {
            out.push({ ok: false, error: String(e && e.message ? e.message : e) });
        }
    }
    process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
