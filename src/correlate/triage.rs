//! The playbook's triage text per detection (../shared/reference/soc-playbook-T1583.006.md):
//! questions for analysis, when to escalate, and containment, carried in every alert so the
//! analyst has them where the alert is read.

use serde_json::{json, Value};

const QUESTIONS_COMMON: &str = "Is there a known, legitimate business need for this web service from this host? Do the access patterns deviate from the host's normal behaviour (frequency, timing, volume)?";
const ESCALATE: &str = "Escalate to Tier 2 if there is no clear business justification for the use of the web service, if the activity aligns with known attack patterns (staging, C2, exfiltration), or if credentials appear reused or abused.";
const CONTAIN: &str = "If malicious activity is confirmed: block the endpoint and the associated addresses at the firewall or proxy, disable the accounts involved with the provider, isolate the host (network segmentation), and image it forensically before clean-up.";

/// The `triage` object of an alert of `detection`.
pub fn for_detection(detection: &str) -> Value {
    let specific = match detection {
        "listed-endpoint" => "Which process on the host contacted the endpoint (EDR)? Does the URL or name (paste id, tunnel hostname, bot token, file-drop link) appear in threat intelligence? Was anything downloaded and executed, or uploaded?",
        "script-agent-web-service" => "Which script or tool made the request (EDR process tree, command line)? Is this host expected to run automation against this service (CI, admin tooling)? Does the request repeat at regular intervals (beaconing)?",
        "context-with-signal" => "Why did this host start using the service now, or at this hour? Is the user present at this time? Did other hosts start using it at the same time?",
        "first-use-org" => "No host in the organisation used this service during the baseline: who introduced it and why? Was an account created with the provider (check sign-up mail, SSO logs)?",
        "unauthorised-source" => "The policy named in the evidence does not allow this source to use this service: is the policy out of date, or is this host acting outside its role?",
        "upload-volume" => "What was uploaded (proxy or DLP logs, file access on the host around first_seen)? Is the destination account the organisation's own? Is the volume normal for this host?",
        "burst" => "Several cloud consoles, sign-ups or new services in minutes: is someone registering infrastructure? Check the host's user, browser history and mail for new provider accounts.",
        "hidden-dns" => "Which process on the host made the encrypted DNS connection (a browser with DoH turned on, or a tool/implant that hides its lookups)? Is DoH allowed by policy here? Its lookups are invisible to the sensor and the resolver's logs from now on: check the host's other connections at the same time.",
        _ => "",
    };
    json!({
        "questions": [specific, QUESTIONS_COMMON],
        "escalation": ESCALATE,
        "containment": CONTAIN,
        "l1_steps": "Correlate with other logs for the same host and time (proxy, EDR, authentication); cross-reference the names and addresses with threat intelligence; look for exfiltration patterns (upload volume) and rare protocols.",
    })
}
