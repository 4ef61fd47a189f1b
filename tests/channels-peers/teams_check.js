// Holds the Bot Framework stand-in and countersign's Teams traffic to the
// Bot Framework SDK (botbuilder, botframework-connector).
//
// stdin: {"invokes": [{"activity", "response"}], "dm": {"serviceUrl", "token", "appId", "member", "tenant"},
//         "outgoing": [{"model": "Activity"|"ConversationParameters", "body"}]}
//   invokes: each `adaptiveCard/action` activity the test sent countersign
//     is run through botbuilder's TeamsActivityHandler, which parses it as
//     Teams would hand it to a bot; the handler answers with countersign's
//     actual response, which botbuilder wraps into the invoke response.
//   dm: botframework-connector's ConnectorClient opens a 1:1 conversation
//     and posts to it through the stand-in, as a botbuilder bot would for a
//     proactive message.
//   outgoing: everything countersign sent to the Bot Connector must pass
//     through the SDK's own request models (botframework-connector's
//     mappers, which type-check every field) and come back unchanged.
// stdout: {"invokes": [{"verb", "data", "tenant", "status", "body", "error"}], "dm": {"conversation", "activity"},
//          "outgoing": [[error, ...], ...]}
const { TurnContext, BotAdapter } = require("botbuilder-core");
const { TeamsActivityHandler, teamsGetTenant } = require("botbuilder");
const connector = require("botframework-connector");
const Mappers = require("botframework-connector/lib/connectorApi/models/mappers");
const { createSerializer } = require("@azure/core-client");

function checkOutgoing({ model, body }) {
    const mapper = Mappers[model];
    if (!mapper) return [`unknown model ${model}`];
    const serializer = createSerializer(Mappers);
    try {
        const parsed = serializer.deserialize(mapper, body, "body");
        const again = serializer.serialize(mapper, parsed, "body");
        const errors = [];
        if (JSON.stringify(canonical(again)) !== JSON.stringify(canonical(body))) {
            errors.push(`the SDK reads it differently: ${JSON.stringify(again)}`);
        }
        return errors;
    } catch (e) {
        return [String(e && e.message ? e.message : e)];
    }
}

function canonical(value) {
    if (Array.isArray(value)) return value.map(canonical);
    if (value && typeof value === "object") {
        return Object.fromEntries(Object.keys(value).sort().filter((k) => value[k] !== undefined).map((k) => [k, canonical(value[k])]));
    }
    return value;
}

class CapturingAdapter extends BotAdapter {
    constructor() {
        super();
        this.sent = [];
    }
    async sendActivities(_context, activities) {
        this.sent.push(...activities);
        return activities.map(() => ({ id: "" }));
    }
    async updateActivity() {}
    async deleteActivity() {}
    async continueConversation() {}
}

class Recorder extends TeamsActivityHandler {
    constructor(response) {
        super();
        this.response = response;
        this.seen = null;
    }
    async onAdaptiveCardInvoke(_context, invokeValue) {
        this.seen = invokeValue;
        return this.response;
    }
}

const KNOWN_TYPES = ["application/vnd.microsoft.card.adaptive", "application/vnd.microsoft.activity.message"];

async function checkInvoke({ activity, response }) {
    const adapter = new CapturingAdapter();
    const context = new TurnContext(adapter, activity);
    const bot = new Recorder(response);
    await bot.run(context);
    const answer = adapter.sent.find((a) => a.type === "invokeResponse");
    const out = {
        verb: bot.seen ? bot.seen.action.verb : null,
        data: bot.seen ? bot.seen.action.data : null,
        tenant: (teamsGetTenant(activity) || {}).id || null,
        status: answer ? answer.value.status : null,
        body: answer ? answer.value.body : null,
        error: null,
    };
    if (!bot.seen) out.error = `botbuilder did not accept the invoke: ${JSON.stringify(answer && answer.value)}`;
    else if (!response || response.statusCode !== 200) out.error = `statusCode ${response && response.statusCode}`;
    else if (!KNOWN_TYPES.includes(response.type)) out.error = `unknown response type ${response.type}`;
    return out;
}

async function proactive({ serviceUrl, token, appId, member, tenant }) {
    const client = new connector.ConnectorClient(new connector.TokenCredentials(token), {
        baseUri: serviceUrl.replace(/\/$/, ""),
    });
    const created = await client.conversations.createConversation({
        isGroup: false,
        bot: { id: `28:${appId}` },
        members: [{ id: member }],
        tenantId: tenant,
        channelData: { tenant: { id: tenant } },
    });
    const sent = await client.conversations.sendToConversation(created.id, { type: "message", text: "from the SDK" });
    return { conversation: created.id, activity: sent.id };
}

async function main() {
    let input = "";
    for await (const chunk of process.stdin) input += chunk;
    const data = JSON.parse(input);
    const out = { invokes: [], dm: null, outgoing: (data.outgoing || []).map(checkOutgoing) };
    for (const c of data.invokes || []) out.invokes.push(await checkInvoke(c));
    if (data.dm) out.dm = await proactive(data.dm);
    process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
