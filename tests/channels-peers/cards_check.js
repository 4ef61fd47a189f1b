// Parses every Adaptive Card countersign sent with Microsoft's own
// `adaptivecards` library and reports what it could not understand.
// stdin: JSON array of cards; stdout: JSON array of error lists.
const AC = require("adaptivecards/dist/adaptivecards.js");

function check(json) {
    const errors = [];
    if (json.version !== "1.5") errors.push(`version ${json.version}, expected 1.5`);
    const context = new AC.SerializationContext();
    const card = new AC.AdaptiveCard();
    card.parse(json, context);
    for (let i = 0; i < context.eventCount; i++) errors.push(`parse: ${context.getEventAt(i).message}`);
    const results = card.validateProperties();
    for (const event of results.validationEvents) errors.push(`validate: ${event.message}`);
    // Universal Actions must parse as such, with an Action.Submit fallback.
    for (let i = 0; i < card.getActionCount(); i++) {
        const action = card.getActionAt(i);
        const type = action.getJsonTypeName();
        if (type === "Action.Execute") {
            if (!action.verb) errors.push(`action ${i}: Action.Execute without a verb`);
            const fallback = json.actions[i].fallback;
            if (!fallback || fallback.type !== "Action.Submit") errors.push(`action ${i}: no Action.Submit fallback`);
        } else if (type !== "Action.OpenUrl") {
            errors.push(`action ${i}: unexpected ${type}`);
        }
    }
    return errors;
}

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
    const cards = JSON.parse(input);
    process.stdout.write(JSON.stringify(cards.map(check)));
});
