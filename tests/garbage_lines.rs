//! Bad input never stops the node: every garbage line gets an error reply (or, where no reply
//! is possible, a log line on stderr) and the next valid request is answered. Lines over
//! `node::MAX_LINE_BYTES` are skipped without being held in memory.
mod common;

use common::{envelope, LiveNode, Project};
use serde_json::{json, Value};

/// A status request, the valid line sent after each garbage line.
fn status(msg_id: u64) -> Vec<u8> {
    envelope(json!({"type": "status", "msg_id": msg_id})).into_bytes()
}

/// Garbage lines, each with a word its error text must hold; `None` where the line deserves
/// a log line and no reply.
fn garbage() -> Vec<(Vec<u8>, Option<&'static str>)> {
    let deep_array = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_object = format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    let deep_in_body = format!(
        "{{\"type\":\"validate\",\"msg_id\":1,\"table\":\"users\",\"validations\":{}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let text = |s: &str| s.as_bytes().to_vec();
    vec![
        (
            text(r#"{"src":"c1","dest":"n1","body":{"type":"status","msg_id":1"#),
            Some("JSON"),
        ),
        (text(r#"{"type":"status","#), Some("JSON")),
        (
            b"{\"type\":\"status\",\"msg_id\":1,\"x\":\"\xff\xfe\"}".to_vec(),
            Some("UTF-8"),
        ),
        (b"\xc3\x28".to_vec(), Some("UTF-8")),
        (text(""), None),
        (text("   \t "), None),
        (deep_array.into_bytes(), Some("JSON")),
        (deep_object.into_bytes(), Some("JSON")),
        (deep_in_body.into_bytes(), Some("JSON")),
        (text("[1, 2, 3]"), Some("object")),
        (text(r#"[{"type":"status","msg_id":1}]"#), Some("object")),
        (text("42"), Some("object")),
        (text(r#""status""#), Some("object")),
        (text("null"), Some("object")),
        (text("true"), Some("object")),
        (
            text(r#"{"src":"c1","dest":"n1","body":{"type":"status"}}"#),
            Some("msg_id"),
        ),
        (text(r#"{"type":"status"}"#), Some("msg_id")),
        (
            text(r#"{"src":"c1","dest":"n1","body":{"type":"status","msg_id":"7"}}"#),
            Some("msg_id"),
        ),
        (
            text(r#"{"src":"c1","dest":"n1","body":{"type":"status","msg_id":-7}}"#),
            Some("msg_id"),
        ),
        (
            text(r#"{"src":"c1","dest":"n1","body":{"type":"status","msg_id":1.5}}"#),
            Some("msg_id"),
        ),
        (
            text(r#"{"src":"c1","dest":"n1","body":"status"}"#),
            Some("body"),
        ),
        (
            text(r#"{"src":"c1","dest":"n1","body":[{"type":"status","msg_id":1}]}"#),
            Some("body"),
        ),
        (
            text(r#"{"src":"c1","dest":"n1","body":null}"#),
            Some("body"),
        ),
        (
            text(r#"{"src":1,"dest":"n1","body":{"type":"status","msg_id":1}}"#),
            Some("src"),
        ),
        (
            text(r#"{"src":"c1","dest":["n1"],"body":{"type":"status","msg_id":1}}"#),
            Some("dest"),
        ),
        (
            text(r#"{"dest":"n1","body":{"type":"status","msg_id":1}}"#),
            Some("src"),
        ),
        (
            text(r#"{"src":"c1","body":{"type":"status","msg_id":1}}"#),
            Some("dest"),
        ),
        (
            text(r#"{"type":"status","msg_id":1} trailing"#),
            Some("JSON"),
        ),
        (
            text("\u{feff}{\"type\":\"status\",\"msg_id\":1}"),
            Some("JSON"),
        ),
        (text("{\"type\":\"status\",\"msg_id\":1}\0"), Some("JSON")),
    ]
}

fn body(reply: &Value) -> &Value {
    reply.get("body").unwrap_or(reply)
}

#[test]
fn every_garbage_line_is_answered_or_logged_and_the_node_reads_on() {
    let project = Project::demo();
    let mut node = LiveNode::start(&project);
    let lines = garbage();
    let mut logged_only = 0;
    for (i, (line, expected)) in lines.iter().enumerate() {
        let valid_id = 1000 + i as u64;
        node.send(line);
        node.send(&status(valid_id));
        let shown = String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
        match expected {
            Some(word) => {
                let reply = node.reply();
                let error = body(&reply);
                assert_eq!(error["type"], "error", "{shown}: {reply}");
                assert_eq!(error["code"], 12, "{shown}: {reply}");
                assert!(
                    error["text"].as_str().unwrap().contains(word),
                    "{shown}: the error should name {word}: {reply}"
                );
            }
            None => logged_only += 1,
        }
        let next = node.reply();
        assert_eq!(body(&next)["type"], "status", "after {shown}: {next}");
        assert_eq!(
            body(&next)["in_reply_to"],
            valid_id,
            "after {shown}: {next}"
        );
    }
    let stderr = node.finish();
    assert!(
        stderr.matches("blank line").count() >= logged_only,
        "blank lines are logged: {stderr}"
    );
}

#[test]
fn replies_to_broken_envelopes_go_back_to_the_sender() {
    let project = Project::demo();
    let mut node = LiveNode::start(&project);
    node.send(br#"{"src":"c1","dest":"n1","body":"status"}"#);
    let reply = node.reply();
    assert_eq!(reply["dest"], "c1", "{reply}");
    assert_eq!(reply["src"], "n1", "{reply}");
    node.send(br#"{"src":"c1","dest":"n1","body":{"type":"status","msg_id":"7"}}"#);
    let reply = node.reply();
    assert_eq!(reply["dest"], "c1", "{reply}");
    assert_eq!(reply["body"]["code"], 12, "{reply}");
    node.finish();
}

#[test]
fn a_line_over_the_limit_is_skipped_without_being_held_in_memory() {
    let project = Project::demo();
    let mut node = LiveNode::start(&project);
    node.send(&status(1));
    assert_eq!(body(&node.reply())["in_reply_to"], 1);
    let baseline = node.peak_memory_kb();

    let huge = format!(
        "{{\"type\":\"status\",\"msg_id\":2,\"padding\":\"{}\"}}",
        "x".repeat(20 * 1024 * 1024)
    );
    node.send(huge.as_bytes());
    let refused = node.reply();
    assert_eq!(refused["code"], 12, "{refused}");
    assert!(
        refused["text"]
            .as_str()
            .unwrap()
            .contains(&mig::node::MAX_LINE_BYTES.to_string()),
        "{refused}"
    );
    assert!(refused.get("in_reply_to").is_none(), "{refused}");
    node.send(&status(3));
    assert_eq!(body(&node.reply())["in_reply_to"], 3);

    let grown = node.peak_memory_kb().saturating_sub(baseline);
    assert!(
        grown < 4 * 1024,
        "a 20 MB line grew the node's peak memory by {grown} kB (baseline {baseline} kB)"
    );
    node.finish();
}
