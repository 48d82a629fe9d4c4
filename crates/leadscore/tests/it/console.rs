//! The web console over real HTTP against `leadscore serve`: signing in with an account made by
//! `leadscore users create`, the session cookie and its flags, the leads page, posts from other
//! sites refused, sign-out with the session's form token, and guessing slowed down. The
//! administration pages (webhooks and deliveries, keys, people, one's own password, predictive
//! models): each action done by an admin, refused to editors and viewers by the request itself,
//! refused without the session's token or from another origin; secrets shown once; sessions past
//! their idle time or their end, opened through the store at past times.

use serde_json::json;

use crate::common::*;

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

fn sign_in(server: &Server, email: &str, password: &str) -> Response {
    let body = format!("email={}&password={}", email.replace('@', "%40"), password.replace(' ', "+"));
    let origin = format!("http://{}", server.address);
    request(&server.address, "POST", "/sign-in", &[FORM, ("Origin", &origin)], body.as_bytes())
}

/// The session token a sign-in's answer sets.
fn session_of(answer: &Response) -> String {
    let cookie = answer.header("set-cookie").unwrap_or_else(|| panic!("no cookie: {answer:?}"));
    cookie.strip_prefix("leadscore_session=").unwrap().split(';').next().unwrap().to_string()
}

fn page(server: &Server, path: &str, session: &str) -> Response {
    request(&server.address, "GET", path, &[("Cookie", &format!("leadscore_session={session}"))], b"")
}

#[test]
fn a_person_signs_in_sees_the_leads_by_score_and_signs_out() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, ingest, _) = keys_of_every_scope(dir.path(), "acme");
    create_account(dir.path(), "ana.kowalska@example.pl", "viewer");
    let server = Server::start(dir.path(), &[]);
    let model = "[scores.engagement]\ntiers = [{ label = \"cold\" }, { label = \"hot\", min = 2 }]\n[[scores.engagement.rules]]\nname = \"visit\"\nevent = \"page_view\"\npoints = 1\n";
    assert_eq!(server.post_text("/api/models", &admin, model).status, 201);
    for (user, visits) in [("王小明", 3), ("Иван Петров", 1)] {
        for n in 0..visits {
            let event = json!({"userId": user, "event": "page_view", "messageId": format!("{user}-{n}")});
            assert_eq!(server.post_json("/v1/track", &ingest, &event).status, 200);
        }
    }

    // Not signed in: the console sends people to the sign-in form.
    let home = request(&server.address, "GET", "/", &[], b"");
    assert_eq!((home.status, home.header("location")), (303, Some("/sign-in")));
    assert_eq!(request(&server.address, "GET", "/leads", &[], b"").header("location"), Some("/sign-in"));
    let form = request(&server.address, "GET", "/sign-in", &[], b"");
    assert_eq!(form.status, 200);
    assert_eq!(form.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(form.header("content-security-policy").unwrap().contains("frame-ancestors 'none'"));
    assert!(form.body.contains("<label for=\"email\">E-mail address</label>"), "{}", form.body);

    let signed_in = sign_in(&server, "Ana.Kowalska@example.pl", PASSWORD);
    assert_eq!((signed_in.status, signed_in.header("location")), (303, Some("/leads")));
    let cookie = signed_in.header("set-cookie").unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && !cookie.contains("Secure"), "{cookie}");
    let session = session_of(&signed_in);

    let leads = page(&server, "/leads", &session);
    assert_eq!(leads.status, 200, "{}", leads.body);
    assert_eq!(leads.header("cache-control"), Some("no-store"));
    let first = leads.body.find("王小明").expect("the best lead is listed");
    let second = leads.body.find("Иван Петров").expect("every lead is listed");
    assert!(first < second, "best first");
    assert!(leads.body.contains("<span class=\"badge badge-tier-0\">hot</span>"), "{}", leads.body);
    assert!(leads.body.contains("ana.kowalska@example.pl"), "the header names who is signed in");

    // A lead's page explains every point: the rule, how many events, the total.
    let path = "/leads/%E7%8E%8B%E5%B0%8F%E6%98%8E"; // 王小明, as the list links it
    assert!(leads.body.contains(&format!("href=\"{path}\"")), "the list links each lead to its page");
    let stage = json!({"stage": "sal", "reason": "Позвонил, ждёт демо", "actor": "Zofia"});
    assert_eq!(server.post_json("/api/leads/%E7%8E%8B%E5%B0%8F%E6%98%8E/stage", &admin, &stage).status, 200);
    let lead = page(&server, path, &session);
    assert_eq!(lead.status, 200, "{}", lead.body);
    assert!(lead.body.contains("<h1 class=\"lead-title\">王小明</h1>"), "{}", lead.body);
    assert!(lead.body.contains("<span class=\"wf-label\">visit ×3</span>"), "{}", lead.body);
    assert!(lead.body.contains("<span class=\"wf-value\">+3</span>"), "{}", lead.body);
    assert!(lead.body.contains("<span class=\"badge badge-tier-0\">hot</span>"));
    assert!(lead.body.contains("lead → sal") && lead.body.contains("by Zofia: Позвонил, ждёт демо"), "{}", lead.body);
    assert_eq!(page(&server, "/leads/nobody", &session).status, 404);

    let hot = page(&server, "/leads?tier=hot", &session);
    assert!(hot.body.contains("王小明") && !hot.body.contains("Иван Петров"), "{}", hot.body);
    let typo = page(&server, "/leads?tier=warm", &session);
    assert_eq!(typo.status, 400);
    assert!(typo.body.contains("`tier` `warm` is not a tier of score `engagement`"), "{}", typo.body);

    // Signing out needs the session's own form token, from a page of this origin.
    let origin = format!("http://{}", server.address);
    let session_cookie = format!("leadscore_session={session}");
    let out = |body: &str, origin: &str| {
        let headers = [FORM, ("Origin", origin), ("Cookie", session_cookie.as_str())];
        request(&server.address, "POST", "/sign-out", &headers, body.as_bytes())
    };
    assert_eq!(out("csrf=forged", &origin).status, 403);
    let token = leads.body.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    assert_eq!(out(&format!("csrf={token}"), "https://evil.example").status, 403, "another site's post");
    let signed_out = out(&format!("csrf={token}"), &origin);
    assert_eq!((signed_out.status, signed_out.header("location")), (303, Some("/sign-in")));
    assert!(signed_out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(page(&server, "/leads", &session).header("location"), Some("/sign-in"), "the session ended");
}

#[test]
fn wrong_passwords_are_answered_alike_slowed_down_and_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    create_account(dir.path(), "ana@example.com", "admin");
    let server = Server::start(dir.path(), &["--behind-https"]);

    let wrong = sign_in(&server, "ana@example.com", "not my password");
    let unknown = sign_in(&server, "bob@example.com", PASSWORD);
    for answer in [&wrong, &unknown] {
        assert_eq!(answer.status, 401);
        assert!(answer.body.contains("The e-mail address or the password is wrong"), "{}", answer.body);
        assert!(answer.header("set-cookie").is_none());
        assert!(!answer.body.contains("not my password") && !answer.body.contains(PASSWORD));
    }
    assert!(wrong.body.contains("value=\"ana@example.com\""), "the address typed stays in the form");

    let elsewhere = request(
        &server.address,
        "POST",
        "/sign-in",
        &[FORM, ("Origin", "https://evil.example")],
        format!("email=ana%40example.com&password={}", PASSWORD.replace(' ', "+")).as_bytes(),
    );
    assert_eq!(elsewhere.status, 403, "a sign-in posted by another site");

    // Five mistakes cost nothing (the one above and four more); past them, even the right
    // password waits.
    for _ in 0..4 {
        assert_eq!(sign_in(&server, "ana@example.com", "guess").status, 401);
    }
    let slowed = sign_in(&server, "ana@example.com", PASSWORD);
    assert_eq!(slowed.status, 429, "{}", slowed.body);
    assert!(slowed.header("retry-after").is_some());
    assert!(slowed.body.contains("Too many failed sign-ins"), "{}", slowed.body);

    std::thread::sleep(std::time::Duration::from_millis(
        1000 * slowed.header("retry-after").unwrap().parse::<u64>().unwrap() + 100,
    ));
    let signed_in = sign_in(&server, "ana@example.com", PASSWORD);
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert!(signed_in.header("set-cookie").unwrap().contains("; Secure"), "behind HTTPS, the cookie is Secure");
}

#[test]
fn an_editor_moves_a_lead_with_a_reason_and_a_viewer_cannot_even_by_posting() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, ingest, read) = keys_of_every_scope(dir.path(), "acme");
    create_account(dir.path(), "zofia@example.pl", "editor");
    create_account(dir.path(), "viewer@example.pl", "viewer");
    let server = Server::start(dir.path(), &[]);
    assert_eq!(server.post_text("/api/models", &admin, COUNTING_MODEL).status, 201);
    let event = json!({"userId": "lead-1", "event": "page_view", "messageId": "m1"});
    assert_eq!(server.post_json("/v1/track", &ingest, &event).status, 200);
    let origin = format!("http://{}", server.address);

    let post_move = |session: &str, body: &str| {
        let cookie = format!("leadscore_session={session}");
        let headers = [FORM, ("Origin", origin.as_str()), ("Cookie", cookie.as_str())];
        request(&server.address, "POST", "/leads/lead-1/stage", &headers, body.as_bytes())
    };
    let token_of = |page: &Response| {
        page.body.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string()
    };

    // A viewer sees no form, and posting it anyway is refused.
    let viewer = session_of(&sign_in(&server, "viewer@example.pl", PASSWORD));
    let seen = page(&server, "/leads/lead-1", &viewer);
    assert_eq!(seen.status, 200);
    assert!(!seen.body.contains("Move to another stage"), "a viewer is offered no move");
    let refused = post_move(&viewer, &format!("csrf={}&stage=sal&reason=", token_of(&seen)));
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("A viewer cannot move a lead&#39;s stage")
            || refused.body.contains("A viewer cannot move a lead's stage"),
        "{}",
        refused.body
    );

    let editor = session_of(&sign_in(&server, "zofia@example.pl", PASSWORD));
    let form = page(&server, "/leads/lead-1", &editor);
    assert!(form.body.contains("Move to another stage"));
    let token = token_of(&form);
    let without_reason = post_move(&editor, &format!("csrf={token}&stage=nurture&reason=+"));
    assert_eq!(without_reason.status, 400, "{}", without_reason.body);
    assert!(without_reason.body.contains("Moving a lead to nurture needs a `reason`"), "{}", without_reason.body);
    assert_eq!(post_move(&editor, "csrf=forged&stage=sal&reason=").status, 403);

    let moved = post_move(&editor, &format!("csrf={token}&stage=sal&reason=Called+back%2C+wants+a+demo"));
    assert_eq!((moved.status, moved.header("location")), (303, Some("/leads/lead-1")));
    let stages = server.get("/api/leads/lead-1/stages", &read).json();
    assert_eq!(stages["stage"], "sal");
    let last = stages["changes"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["actor"].as_str(), last["reason"].as_str()),
        (Some("zofia@example.pl"), Some("Called back, wants a demo"))
    );
    let shown = page(&server, "/leads/lead-1", &editor);
    assert!(shown.body.contains("lead → sal") && shown.body.contains("by zofia@example.pl: Called back, wants a demo"));

    // Going back in the funnel needs the box ticked.
    let back = post_move(&editor, &format!("csrf={token}&stage=lead&reason="));
    assert_eq!(back.status, 409, "{}", back.body);
    assert_eq!(post_move(&editor, &format!("csrf={token}&stage=lead&reason=&force=yes")).status, 303);
}

#[test]
fn an_editor_overrides_a_score_and_lifts_it_and_a_viewer_sees_both_values_but_no_form() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, ingest, read) = keys_of_every_scope(dir.path(), "acme");
    create_account(dir.path(), "zofia@example.pl", "editor");
    create_account(dir.path(), "viewer@example.pl", "viewer");
    let server = Server::start(dir.path(), &[]);
    assert_eq!(server.post_text("/api/models", &admin, COUNTING_MODEL).status, 201);
    let event = json!({"userId": "lead-1", "event": "page_view", "messageId": "m1"});
    assert_eq!(server.post_json("/v1/track", &ingest, &event).status, 200);
    let path = "/leads/lead-1/overrides/activity";

    let viewer = session_of(&sign_in(&server, "viewer@example.pl", PASSWORD));
    let seen = page(&server, "/leads/lead-1", &viewer);
    assert!(!seen.body.contains("Override this score"), "a viewer is offered no override");
    let refused = post_form(&server, path, &viewer, &format!("csrf={}&tier=hot&reason=x", csrf_of(&seen)));
    assert_eq!(refused.status, 403, "{}", refused.body);

    let editor = session_of(&sign_in(&server, "zofia@example.pl", PASSWORD));
    let form = page(&server, "/leads/lead-1", &editor);
    assert!(form.body.contains("Override this score"), "{}", form.body);
    let token = csrf_of(&form);
    assert_eq!(post_form(&server, path, &editor, "csrf=forged&tier=hot&reason=x").status, 403);
    let without_reason = post_form(&server, path, &editor, &format!("csrf={token}&tier=hot&reason=+"));
    assert_eq!(without_reason.status, 400, "{}", without_reason.body);
    assert!(without_reason.body.contains("The score was not overridden"), "{}", without_reason.body);
    assert!(without_reason.body.contains("href=\"#override-activity-reason\""), "{}", without_reason.body);
    let unknown_tier = post_form(&server, path, &editor, &format!("csrf={token}&tier=warm&reason=why"));
    assert_eq!(unknown_tier.status, 400);
    assert!(unknown_tier.body.contains("href=\"#override-activity-tier\""), "{}", unknown_tier.body);
    // The form comes back as it was typed, its field marked.
    assert!(unknown_tier.body.contains(">why</textarea>"), "{}", unknown_tier.body);
    assert!(unknown_tier.body.contains("class=\"field field-error\"><label for=\"override-activity-tier\""));
    let not_a_number = post_form(&server, path, &editor, &format!("csrf={token}&value=lots&reason=why"));
    assert_eq!(not_a_number.status, 400);
    assert!(not_a_number.body.contains("href=\"#override-activity-value\""), "{}", not_a_number.body);

    let body = format!(
        "csrf={token}&value=&tier=hot&expires=2099-01-31T09%3A00&reason={}",
        form_value("Signed a letter of intent")
    );
    let set = post_form(&server, path, &editor, &body);
    assert_eq!((set.status, set.header("location")), (303, Some("/leads/lead-1")), "{}", set.body);
    let lead = server.get("/api/leads/lead-1", &read).json();
    assert_eq!(lead["overrides"]["activity"]["set_by"], "user zofia@example.pl", "{lead}");
    assert_eq!(lead["overrides"]["activity"]["expires_at"], "2099-01-31T09:00:00Z");

    // Everyone sees both values and who set the override and why; the list marks it.
    let shown = page(&server, "/leads/lead-1", &viewer);
    assert!(shown.body.contains("set by hand"), "{}", shown.body);
    assert!(shown.body.contains("Signed a letter of intent") && shown.body.contains("user zofia@example.pl"));
    assert!(
        shown.body.contains("The model&#39;s own score: <strong>1</strong> (cold)")
            || shown.body.contains("The model's own score: <strong>1</strong> (cold)"),
        "{}",
        shown.body
    );
    assert!(!shown.body.contains("Lift the override"), "a viewer cannot lift it");
    assert!(
        shown.body.contains("override by user zofia@example.pl: Signed a letter of intent"),
        "the history says who and why"
    );
    let listed = page(&server, "/leads", &viewer);
    assert!(listed.body.contains("badge-override"), "{}", listed.body);
    let refused = post_form(&server, &format!("{path}/lift"), &viewer, &format!("csrf={}&note=", csrf_of(&shown)));
    assert_eq!(refused.status, 403);

    let lifted = post_form(
        &server,
        &format!("{path}/lift"),
        &editor,
        &format!("csrf={token}&note={}", form_value("Deal fell through")),
    );
    assert_eq!((lifted.status, lifted.header("location")), (303, Some("/leads/lead-1")), "{}", lifted.body);
    let history = server.get("/api/leads/lead-1/history", &read).json();
    assert_eq!(
        history["history"][0]["override"],
        json!({"action": "lifted", "by": "user zofia@example.pl", "note": "Deal fell through"})
    );
    assert!(!page(&server, "/leads", &viewer).body.contains("badge-override"));
    let again = post_form(&server, &format!("{path}/lift"), &editor, &format!("csrf={token}&note="));
    assert_eq!(again.status, 404, "{}", again.body);
}

#[test]
fn the_demo_prints_an_account_that_signs_in_at_once() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let mut child = bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--demo", "--demo-leads", "30", "--data"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut account, mut address) = (None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split_once(" and sign in as ").map(|(_, rest)| rest.to_string()) {
            let (email, password) = rest.split_once(" with the password ").unwrap();
            account = Some((email.to_string(), password.to_string()));
        }
        if let Some(listening) = line.strip_prefix("leadscore listening on http://") {
            address = Some(listening.to_string());
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let server = Server { child, address: address.expect("the address is printed"), data: dir.path().to_path_buf() };
    let (email, password) = account.expect("the demo prints its account");
    assert_eq!(email, "demo@example.com");
    let signed_in = sign_in(&server, &email, &password);
    assert_eq!((signed_in.status, signed_in.header("location")), (303, Some("/leads")), "{}", signed_in.body);
    let leads = page(&server, "/leads", &session_of(&signed_in));
    assert_eq!(leads.body.matches("<tr>").count(), 31, "a header row and the 30 demo leads");
}

// The model pages.

/// The form token of a console page.
fn csrf_of(page: &Response) -> String {
    page.body.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string()
}

/// Posts a console form as a browser of this origin would.
fn post_form(server: &Server, path: &str, session: &str, body: &str) -> Response {
    let origin = format!("http://{}", server.address);
    let cookie = format!("leadscore_session={session}");
    let headers = [FORM, ("Origin", origin.as_str()), ("Cookie", cookie.as_str())];
    request(&server.address, "POST", path, &headers, body.as_bytes())
}

/// A form value, percent-encoded.
fn form_value(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A page showing a model preview, once its comparison is done (a small workspace's is in the
/// first answer, unless the machine is slow).
fn compared(server: &Server, path: &str, session: &str) -> Response {
    let mut answer = page(server, path, session);
    for _ in 0..600 {
        if answer.status != 200 || !answer.body.contains("leads compared (") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        answer = page(server, path, session);
    }
    answer
}

#[test]
fn editors_check_save_and_preview_models_and_only_admins_activate_or_roll_back() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, ingest, read) = keys_of_every_scope(dir.path(), "acme");
    create_account(dir.path(), "zofia@example.pl", "editor");
    create_account(dir.path(), "viewer@example.pl", "viewer");
    create_account(dir.path(), "admin@example.pl", "admin");
    let server = Server::start(dir.path(), &[]);
    assert_eq!(server.post_text("/api/models", &admin, COUNTING_MODEL).status, 201);
    for n in 0..2 {
        let event = json!({"userId": "lead-1", "event": "page_view", "messageId": format!("m{n}")});
        assert_eq!(server.post_json("/v1/track", &ingest, &event).status, 200);
    }
    let listed = server.get("/api/models", &read).json();
    let uploader = listed["models"][0]["uploaded_by"].as_str().unwrap().to_string();
    assert!(uploader.starts_with("API key lsk_"), "the key that uploaded it, by its prefix: {uploader}");
    let viewer = session_of(&sign_in(&server, "viewer@example.pl", PASSWORD));
    let editor = session_of(&sign_in(&server, "zofia@example.pl", PASSWORD));
    let admin_session = session_of(&sign_in(&server, "admin@example.pl", PASSWORD));

    // Anyone signed in reads the versions and their text.
    let versions = page(&server, "/models", &viewer);
    assert_eq!(versions.status, 200, "{}", versions.body);
    assert!(versions.body.contains("Version 1") && versions.body.contains(&uploader), "{}", versions.body);
    assert!(!versions.body.contains("href=\"/models/new\""), "a viewer is offered no editor");
    let one = page(&server, "/models/1", &viewer);
    assert!(
        one.body.contains("<li id=\"L7\"><span class=\"ln\" aria-hidden=\"true\">7</span><code>points = 1</code>"),
        "{}",
        one.body
    );
    assert_eq!(page(&server, "/models/9", &viewer).status, 404);

    // A viewer can neither open the editor nor save, even by posting.
    assert_eq!(page(&server, "/models/new", &viewer).status, 403);
    let token = csrf_of(&versions);
    let refused = post_form(&server, "/models/new", &viewer, &format!("csrf={token}&action=save&source=x"));
    assert_eq!(refused.status, 403, "{}", refused.body);

    // An editor checks a broken model: the diagnostic names its line and marks it.
    let editor_form = page(&server, "/models/new", &editor);
    assert_eq!(editor_form.status, 200);
    assert!(editor_form.body.contains("[scores.activity]"), "prefilled from the active version");
    let token = csrf_of(&editor_form);
    let broken = COUNTING_MODEL.replacen("points = 1\n", "pointz = 1\n", 1);
    let checked = post_form(
        &server,
        "/models/new",
        &editor,
        &format!("csrf={token}&action=check&source={}", form_value(&broken)),
    );
    assert_eq!(checked.status, 200, "{}", checked.body);
    assert!(checked.body.contains("<a href=\"#L7\">line 7, column 1</a>: Unknown field `pointz`"), "{}", checked.body);
    assert!(checked.body.contains("<li id=\"L7\" class=\"source-error\">"), "{}", checked.body);
    // The editor's script checks as the text is typed: the same diagnostics, as JSON.
    let typed = post_form(&server, "/models/check", &editor, &format!("csrf={token}&source={}", form_value(&broken)));
    assert_eq!(typed.status, 200, "{}", typed.body);
    assert_eq!(
        (typed.json()["diagnostics"][0]["line"].as_u64(), typed.json()["diagnostics"][0]["severity"].as_str()),
        (Some(7), Some("error"))
    );
    assert_eq!(
        post_form(&server, "/models/check", &viewer, &format!("csrf={}&source=x", csrf_of(&versions))).status,
        403
    );
    // Saving it is refused, the text kept, nothing stored.
    let save = |source: &str| {
        post_form(&server, "/models/new", &editor, &format!("csrf={token}&action=save&source={}", form_value(source)))
    };
    let not_saved = save(&broken);
    assert_eq!(not_saved.status, 400, "{}", not_saved.body);
    assert!(
        not_saved.body.contains("pointz = 1</textarea>") || not_saved.body.contains("pointz = 1\n"),
        "the text is kept"
    );
    assert_eq!(server.get("/api/models", &read).json()["models"].as_array().unwrap().len(), 1);
    let forged = post_form(
        &server,
        "/models/new",
        &editor,
        &format!("csrf=forged&action=save&source={}", form_value(COUNTING_MODEL)),
    );
    assert_eq!(forged.status, 403);
    let cookie = format!("leadscore_session={editor}");
    let elsewhere = [FORM, ("Origin", "https://evil.example"), ("Cookie", cookie.as_str())];
    let body = format!("csrf={token}&action=save&source={}", form_value(COUNTING_MODEL));
    let from_elsewhere = request(&server.address, "POST", "/models/new", &elsewhere, body.as_bytes());
    assert_eq!(from_elsewhere.status, 403, "a save posted by another site");
    // Fixed (and lowering the hot tier to 2 points), it is saved in the editor's name.
    let fixed = COUNTING_MODEL.replace("min = 3", "min = 2");
    let saved = save(&fixed);
    assert_eq!((saved.status, saved.header("location")), (303, Some("/models/2")), "{}", saved.body);
    let listed = server.get("/api/models", &read).json();
    assert_eq!(listed["models"][1]["uploaded_by"], "zofia@example.pl");
    assert_eq!(listed["models"][1]["active"], false);

    // The diff marks the changed line with - and +.
    let diff = page(&server, "/models/diff?from=1&to=2", &viewer);
    assert_eq!(diff.status, 200);
    assert!(
        diff.body.contains("<tr class=\"diff-removed\"><td class=\"ln\">3</td><td class=\"ln\"></td>"),
        "{}",
        diff.body
    );
    assert!(diff.body.contains("<span aria-hidden=\"true\">+</span>"), "{}", diff.body);
    assert_eq!(page(&server, "/models/diff?from=1&to=99", &viewer).status, 400);

    // The editor previews it: lead-1 (2 page views) would become hot.
    let preview = compared(&server, "/models/2/preview", &editor);
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(
        preview.body.contains("<strong class=\"preview-number\">1</strong> of 1 leads change tier"),
        "{}",
        preview.body
    );
    assert!(preview.body.contains("<a href=\"/leads/lead-1\">lead-1</a>"), "{}", preview.body);
    assert!(!preview.body.contains("/models/2/activate"), "an editor is offered no activation");

    // With one version ever active, there is nothing to roll back to, and the page says so.
    let nothing = page(&server, "/models/rollback", &admin_session);
    assert!(nothing.body.contains("Nothing to roll back to"), "{}", nothing.body);
    let refused = post_form(&server, "/models/rollback", &admin_session, &format!("csrf={}", csrf_of(&nothing)));
    assert_eq!(refused.status, 404, "{}", refused.body);
    assert!(refused.body.contains("No earlier version to roll back to"), "{}", refused.body);

    // Only an admin activates or rolls back: the requests themselves are refused to an editor.
    assert_eq!(page(&server, "/models/2/activate", &editor).status, 403);
    assert_eq!(post_form(&server, "/models/2/activate", &editor, &format!("csrf={token}")).status, 403);
    assert_eq!(page(&server, "/models/rollback", &editor).status, 403);
    assert_eq!(post_form(&server, "/models/rollback", &editor, &format!("csrf={token}")).status, 403);
    let confirm = compared(&server, "/models/2/activate", &admin_session);
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.body.contains("Activate version 2?") && confirm.body.contains("of 1 leads change tier"));
    assert_eq!(post_form(&server, "/models/2/activate", &admin_session, "csrf=forged").status, 403);
    let admin_token = csrf_of(&confirm);
    wait_until_no_rescoring_runs(&server, &admin);
    let activated = post_form(&server, "/models/2/activate", &admin_session, &format!("csrf={admin_token}"));
    assert_eq!((activated.status, activated.header("location")), (303, Some("/models/rescoring")));
    let done = wait_for_rescoring(&server, &read);
    assert_eq!(done["models"][1]["active"], true);
    let progress = page(&server, "/models/rescoring", &admin_session);
    assert!(progress.body.contains("Rescoring done") && !progress.body.contains("http-equiv"), "{}", progress.body);

    let back = page(&server, "/models/rollback", &admin_session);
    assert!(back.body.contains("Roll back to version 1?"), "{}", back.body);
    let rolled = post_form(&server, "/models/rollback", &admin_session, &format!("csrf={admin_token}"));
    assert_eq!((rolled.status, rolled.header("location")), (303, Some("/models/rescoring")));
    let done = wait_for_rescoring(&server, &read);
    assert_eq!(done["models"][0]["active"], true);
}

/// The figure before `after` in a page, as `<strong class="preview-number">N</strong>` writes it.
fn preview_number(body: &str, after: &str) -> Option<u64> {
    let before = body.split(&format!("</strong>{after}")).next()?;
    (before.len() < body.len()).then(|| before.rsplit('>').next()?.parse().ok())?
}

#[test]
fn a_preview_compares_every_lead_in_the_background_with_progress_then_agrees_with_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, ingest, read) = keys_of_every_scope(dir.path(), "acme");
    create_account(dir.path(), "viewer@example.pl", "viewer");
    // Batches of 40 leads, and a page that does not wait for the comparison it starts: the first
    // answer shows the progress of a comparison that has several batches to go.
    let server = Server::start(dir.path(), &["--preview-batch-leads", "40", "--preview-wait-ms", "0"]);
    assert_eq!(server.post_text("/api/models", &admin, COUNTING_MODEL).status, 201);
    let mut batch = Vec::new();
    for i in 0..130 {
        for n in 0..(1 + i % 4) {
            batch.push(json!({"type": "track", "userId": format!("u{i}"), "event": "page_view", "messageId": format!("t{i}-{n}")}));
        }
    }
    assert_eq!(server.post_json("/v1/batch", &ingest, &json!({"batch": batch})).status, 200);
    // Version 2 is hot from 2 page views: the 33 leads with 2 (i % 4 == 1) change tier.
    assert_eq!(server.post_text("/api/models", &admin, &COUNTING_MODEL.replace("min = 3", "min = 2")).status, 201);
    let viewer = session_of(&sign_in(&server, "viewer@example.pl", PASSWORD));

    let first = page(&server, "/models/2/preview", &viewer);
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(first.body.contains("0 of 130 leads compared (0%)"), "{}", first.body);
    assert!(first.body.contains("<meta http-equiv=\"refresh\" content=\"1\">"), "it reloads itself");
    let mut seen = Vec::new();
    let done = (0..600)
        .find_map(|_| {
            let answer = page(&server, "/models/2/preview", &viewer);
            if answer.body.contains("leads change tier") {
                return Some(answer);
            }
            let progress = answer.body.split(" of 130 leads compared").next().unwrap();
            seen.push(progress.rsplit(": ").next().unwrap().parse::<u64>().expect("its progress"));
            std::thread::sleep(std::time::Duration::from_millis(20));
            None
        })
        .expect("the comparison finishes");
    assert!(seen.iter().all(|n| n % 40 == 0 && *n < 130), "progress by whole batches: {seen:?}");
    assert!(!done.body.contains("http-equiv"), "a finished preview does not reload");
    assert!(done.body.contains("Compared 130 leads at "), "{}", done.body);

    // The same figures as the API's synchronous preview over every lead.
    let api = server.get("/api/models/2/preview?limit=1000", &read).json();
    assert_eq!(api["leads"], 130);
    assert_eq!(api["leads_changing_tier"], 33);
    assert_eq!(preview_number(&done.body, " of 130 leads change tier"), api["leads_changing_tier"].as_u64());
    assert_eq!(preview_number(&done.body, " move to MQL automatically"), api["consequences"]["moves_to_mql"].as_u64());
    let hot = api["candidate"]["activity"]["tiers"]["hot"].as_u64().unwrap();
    assert!(done.body.contains(&format!("<span class=\"tier-count\">{hot}</span>")), "{}", done.body);

    // Compared again on request: a post with the session's token, never without.
    let token = csrf_of(&done);
    assert_eq!(post_form(&server, "/models/2/preview", &viewer, "csrf=forged").status, 403);
    let again = post_form(&server, "/models/2/preview", &viewer, &format!("csrf={token}"));
    assert_eq!((again.status, again.header("location")), (303, Some("/models/2/preview")), "{}", again.body);
    let compared_again = (0..600)
        .map(|_| page(&server, "/models/2/preview", &viewer))
        .find(|answer| answer.body.contains("leads change tier"))
        .expect("the second comparison finishes");
    assert_eq!(preview_number(&compared_again.body, " of 130 leads change tier"), Some(33));
}

// The leads list: filters in the URL, pages by cursor, the view as CSV, and "not found" pages.

/// The `href` of the link with this `rel`, as the page writes it (HTML-escaped `&`).
fn link_of(body: &str, rel: &str) -> Option<String> {
    let before = body.split(&format!("rel=\"{rel}\"")).next()?;
    (before.len() < body.len())
        .then(|| before.rsplit("href=\"").next().unwrap().split('"').next().unwrap().replace("&#38;", "&"))
}

#[test]
fn the_leads_list_filters_pages_by_cursor_and_downloads_the_view_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, ingest, read) = keys_of_every_scope(dir.path(), "acme");
    create_account(dir.path(), "viewer@example.com", "viewer");
    let server = Server::start(dir.path(), &[]);
    let model = "[scores.engagement]\ntiers = [{ label = \"cold\" }, { label = \"hot\", min = 3 }]\n[[scores.engagement.rules]]\nname = \"visit\"\nevent = \"page_view\"\npoints = 1\n";
    assert_eq!(server.post_text("/api/models", &admin, model).status, 201);
    // 60 leads with 1 to 4 visits (ties everywhere), and three with names to search.
    let named = [("Иван Петров", "ООО Ромашка"), ("王芳", "北京科技"), ("=HYPERLINK(\"http://x\")", "+Evil Corp")];
    let mut batch = Vec::new();
    for i in 0..60 {
        let (name, company) =
            named.get(i).map_or((format!("Lead {i}"), "Acme".to_string()), |(n, c)| (n.to_string(), c.to_string()));
        let traits = json!({"name": name, "email": format!("lead{i}@example.com"), "company": company});
        batch.push(
            json!({"type": "identify", "userId": format!("u{i}"), "traits": traits, "messageId": format!("i{i}")}),
        );
        for n in 0..(1 + i % 4) {
            batch.push(json!({"type": "track", "userId": format!("u{i}"), "event": "page_view", "messageId": format!("t{i}-{n}")}));
        }
    }
    assert_eq!(server.post_json("/v1/batch", &ingest, &json!({"batch": batch})).status, 200);
    let session = session_of(&sign_in(&server, "viewer@example.com", PASSWORD));

    // A text search in any case and script; the filters stay in the form.
    let found = page(&server, "/leads?q=%D0%B8%D0%92%D0%90%D0%9D", &session); // иВАН
    assert_eq!(found.status, 200, "{}", found.body);
    assert!(found.body.contains("Иван Петров") && found.body.contains("ООО Ромашка"), "{}", found.body);
    assert!(!found.body.contains("王芳") && found.body.contains("value=\"иВАН\""), "{}", found.body);
    let chinese = page(&server, "/leads?q=%E7%8E%8B%E8%8A%B3", &session); // 王芳, two characters
    assert!(chinese.body.contains("王芳") && !chinese.body.contains("Иван Петров"), "{}", chinese.body);
    let timing = found.header("server-timing").expect("the page says how long it took");
    assert!(timing.starts_with("app;dur="), "{timing}");
    let none = page(&server, "/leads?since=2999-01-01T00%3A00", &session);
    assert!(none.body.contains("No lead matches"), "{}", none.body);
    assert!(none.body.contains("value=\"2999-01-01T00:00\"") && none.body.contains("(UTC)"), "{}", none.body);
    let since = page(&server, "/leads?since=2000-01-01T00%3A00&min=4&max=4&tier=hot", &session);
    assert_eq!(since.body.matches("class=\"lead-main\"").count(), 15, "{}", since.body);
    let wrong = page(&server, "/leads?min=lots", &session);
    assert_eq!(wrong.status, 400);
    assert!(wrong.body.contains("The lowest score must be a number, such as 40; `lots` is not."), "{}", wrong.body);
    assert!(wrong.body.contains("<select id=\"score\""), "the form stays to correct it: {}", wrong.body);

    // Pages by cursor: 50, then the other 10, and back; every lead once.
    let first = page(&server, "/leads?order=asc", &session);
    let leads_of = |body: &str| -> Vec<String> {
        body.split("class=\"lead-main\" href=\"").skip(1).map(|s| s.split('"').next().unwrap().to_string()).collect()
    };
    let next = link_of(&first.body, "next").expect("a next page");
    assert!(next.starts_with("/leads?order=asc&cursor="), "{next}");
    assert!(link_of(&first.body, "prev").is_none());
    let second = page(&server, &next, &session);
    assert_eq!(second.status, 200, "{}", second.body);
    let (mut listed, more) = (leads_of(&first.body), leads_of(&second.body));
    assert_eq!((listed.len(), more.len()), (50, 10));
    assert!(link_of(&second.body, "next").is_none());
    let back = page(&server, &link_of(&second.body, "prev").expect("a previous page"), &session);
    assert_eq!(leads_of(&back.body), listed, "the previous page is the first again");
    listed.extend(more);
    listed.sort();
    listed.dedup();
    assert_eq!(listed.len(), 60);
    assert_eq!(page(&server, "/leads?cursor=nonsense", &session).status, 400);

    // The view as CSV, every matching lead (not only a page), downloadable by a viewer;
    // formulas arrive as text.
    assert!(first.body.contains("href=\"/leads.csv?order=asc\""), "{}", first.body);
    let csv = page(&server, "/leads.csv?order=asc", &session);
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(csv.header("content-disposition").unwrap().starts_with("attachment"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines[0], "lead_id,user_id,name,email,company,stage,engagement,engagement tier,last_activity");
    assert_eq!(lines.len(), 61, "{}", csv.body);
    assert!(lines[1].ends_with("Z") && lines[1].contains(",1,cold,"), "lowest first: {}", lines[1]);
    assert!(csv.body.contains(",u1,王芳,lead1@example.com,北京科技,lead,2,cold,"), "{}", csv.body);
    assert!(csv.body.contains(",u2,\"'=HYPERLINK(\"\"http://x\"\")\",lead2@example.com,'+Evil Corp,"), "{}", csv.body);
    let searched = page(&server, "/leads.csv?q=lead1%40", &session);
    assert_eq!(searched.body.lines().count(), 2, "{}", searched.body);
    assert_eq!(request(&server.address, "GET", "/leads.csv", &[], b"").header("location"), Some("/sign-in"));

    // The API takes the same filters and cursor; offsets still page.
    let api = server.get("/api/leads?search=%D0%B8%D0%B2%D0%B0%D0%BD&limit=1", &read).json();
    assert_eq!(api["leads"][0]["user_id"], "u0", "{api}");
    let page_one = server.get("/api/leads?order=score_asc&limit=40", &read).json();
    let cursor = page_one["next_cursor"].as_str().expect("a next cursor").to_string();
    assert!(page_one["previous_cursor"].is_null());
    let page_two = server.get(&format!("/api/leads?order=score_asc&limit=40&cursor={cursor}"), &read).json();
    let by_offset = server.get("/api/leads?order=score_asc&limit=40&offset=40", &read).json();
    assert_eq!(page_two["leads"], by_offset["leads"], "a cursor and an offset find the same page");
    assert_eq!(page_two["leads"].as_array().unwrap().len(), 20);
    assert!(page_two["next_cursor"].is_null() && page_two["previous_cursor"].is_string());
    let since = server.get("/api/leads?updated_since=2999-01-01T00:00:00Z", &read).json();
    assert_eq!(since["leads"].as_array().unwrap().len(), 0);
    // What a form sends for fields left empty, and control characters (a NUL) in a search.
    for accepted in ["cursor=&offset=0", "search=y%C2%B3f%11%5D%00%23", "search=%00"] {
        let answer = server.get(&format!("/api/leads?{accepted}"), &read);
        assert_eq!(answer.status, 200, "{accepted}: {}", answer.body);
    }
    for refused in ["cursor=x", &format!("cursor={cursor}&offset=1"), "updated_since=yesterday", "max=inf"] {
        let answer = server.get(&format!("/api/leads?{refused}"), &read);
        assert_eq!((answer.status, answer.json()["code"].as_str()), (400, Some("invalid_query")), "{refused}");
    }
}

#[test]
fn an_unknown_address_is_a_page_for_a_browser_and_json_for_an_api_client() {
    let dir = tempfile::tempdir().unwrap();
    create_account(dir.path(), "ana@example.com", "viewer");
    let server = Server::start(dir.path(), &[]);
    let session = session_of(&sign_in(&server, "ana@example.com", PASSWORD));
    let browser = |path: &str| {
        let cookie = format!("leadscore_session={session}");
        request(&server.address, "GET", path, &[("Accept", "text/html,*/*;q=0.8"), ("Cookie", &cookie)], b"")
    };
    let lost = browser("/lead");
    assert_eq!((lost.status, lost.header("content-type")), (404, Some("text/html; charset=utf-8")));
    assert!(lost.body.contains("<h1>Page not found</h1>") && lost.body.contains("<code>/lead</code>"), "{}", lost.body);
    assert!(lost.body.contains("ana@example.com"), "the navigation of the signed-in person");
    for api in ["/api/nowhere", "/v1/nowhere"] {
        let answer = browser(api);
        assert_eq!((answer.status, answer.json()["code"].as_str()), (404, Some("not_found")), "{api}");
    }
    let client = request(&server.address, "GET", "/lead", &[("Accept", "application/json")], b"");
    assert_eq!((client.status, client.json()["code"].as_str()), (404, Some("not_found")));
    let anonymous = request(&server.address, "GET", "/lead", &[("Accept", "text/html")], b"");
    assert_eq!(anonymous.status, 404);
    assert!(anonymous.body.contains("Page not found") && !anonymous.body.contains("Sign out"), "{}", anonymous.body);
}

// The funnel page.

/// A page's text as a person reads it: tags dropped, spaces collapsed.
fn text_of(body: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' => in_tag = false,
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&#38;", "&").replace("&amp;", "&").split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_funnel_counts_the_periods_mqls_through_to_customer_by_tier() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, ingest, _) = keys_of_every_scope(dir.path(), "acme");
    create_account(dir.path(), "viewer@example.pl", "viewer");
    let server = Server::start(dir.path(), &[]);
    let viewer = session_of(&sign_in(&server, "viewer@example.pl", PASSWORD));

    // Before any model or move: the page says what to do.
    let empty = page(&server, "/funnel", &viewer);
    assert_eq!(empty.status, 200, "{}", empty.body);
    let read = text_of(&empty.body);
    assert!(read.contains("No model yet: tiers come from the workspace's active model"), "{read}");
    assert!(read.contains("No lead became an MQL in this period"), "{read}");

    // MQL at 2 visits (moved there automatically), hot at 4.
    let model = "[scores.engagement]\ntiers = [{ label = \"cold\" }, { label = \"mql\", min = 2 }, { label = \"hot\", min = 4 }]\n[[scores.engagement.rules]]\nname = \"visit\"\nevent = \"page_view\"\npoints = 1\n";
    assert_eq!(server.post_text("/api/models", &admin, model).status, 201);
    for (user, visits) in [("anna", 4), ("boris", 2), ("chen", 1), ("dora", 2)] {
        for n in 0..visits {
            let event = json!({"userId": user, "event": "page_view", "messageId": format!("{user}-{n}")});
            assert_eq!(server.post_json("/v1/track", &ingest, &event).status, 200);
        }
    }
    let stage = |user: &str, to: &str| {
        let body = json!({"stage": to, "actor": "Zofia", "reason": "met them"});
        let answer = server.post_json(&format!("/api/leads/{user}/stage"), &admin, &body);
        assert_eq!(answer.status, 200, "{user} to {to}: {}", answer.body);
    };
    // Anna: MQL (as mql), SAL, SQL, customer. Boris: MQL, straight to SQL, lost. Dora stays MQL.
    // Chen never became MQL and is disqualified.
    for to in ["sal", "sql", "customer"] {
        stage("anna", to);
    }
    stage("boris", "sql");
    stage("boris", "lost");
    stage("chen", "disqualified");

    let funnel = page(&server, "/funnel", &viewer);
    assert_eq!(funnel.status, 200, "{}", funnel.body);
    let read = text_of(&funnel.body);
    // Now: tiers (best first) and stages, each linked to the leads it counts.
    assert!(read.contains("Tier Leads Share Bar hot 1 25 % mql 2 50 % cold 1 25 %"), "{read}");
    assert!(funnel.body.contains("href=\"/leads?score=engagement&#38;tier=hot\""), "{}", funnel.body);
    assert!(read.contains("lead 0 0 % mql 1 25 % sal 0 0 % sql 0 0 % opportunity 0 0 % customer 1 25 %"), "{read}");
    assert!(read.contains("disqualified 1 25 % lost 1 25 %"), "{read}");
    assert!(funnel.body.contains("href=\"/leads?stage=customer\""));
    // The period's MQLs: anna, boris and dora; boris skipped SAL but passed it.
    assert!(read.contains("3 in this period"), "{read}");
    assert!(read.contains("The 3 leads that became MQLs in this period"), "{read}");
    assert!(read.contains("MQL 3 100 %"), "{read}");
    assert!(read.contains("(1 timed) SAL 2 66.7 % · 66.7 % of the step before"), "{read}");
    assert!(read.contains("SQL 2 66.7 % · 100 % of the step before"), "{read}");
    assert!(read.contains("Customer 1 33.3 % · 50 % of the step before"), "{read}");
    // Score inflation: one lead of four in the top tier this week.
    assert!(read.contains("In the top tier Scored Share"), "{read}");
    assert!(read.contains("1 4 25 %"), "{read}");
    assert_eq!(funnel.body.matches("class=\"chart\"").count(), 2, "two charts");
    assert!(funnel.body.contains("<title id=\"mql-chart-title\">New MQLs per week</title>"));
    // Win rates: anna (won) and boris (lost) were at tier mql when they became MQL, though anna
    // is hot now; chen never was an MQL and counts by its tier now.
    assert!(read.contains("Tier Tier as of Won Lost Win rate Bar mql at MQL 1 1 50 %"), "{read}");
    assert!(read.contains("cold now 0 1 0 %"), "{read}");

    // A period is chosen in the URL; a wrong one is explained on the page.
    let old = page(&server, "/funnel?from=2020-01-06&to=2020-02-02", &viewer);
    assert_eq!(old.status, 200);
    let read = text_of(&old.body);
    assert!(read.contains("6 Jan 2020 – 2 Feb 2020") && read.contains("0 in this period"), "{read}");
    assert!(
        read.contains("Week of New MQLs 6 Jan 2020 0 13 Jan 2020 0 20 Jan 2020 0 27 Jan 2020 0 From MQL to customer"),
        "{read}"
    );
    let wrong = page(&server, "/funnel?from=2026-02-31&to=2026-03-01", &viewer);
    assert_eq!(wrong.status, 400);
    assert!(text_of(&wrong.body).contains("The start date `2026-02-31` is not a date"), "{}", wrong.body);
    let backwards = page(&server, "/funnel?from=2026-03-01&to=2026-02-01", &viewer);
    assert!(text_of(&backwards.body).contains("The period ends before it starts"));
    let typo = page(&server, "/funnel?score=engagment", &viewer);
    assert_eq!(typo.status, 400);
    assert!(text_of(&typo.body).contains("`score` `engagment` is not a score of the active model"), "{}", typo.body);
    assert_eq!(request(&server.address, "GET", "/funnel", &[], b"").header("location"), Some("/sign-in"));
}

// Administration: webhooks and their deliveries, API keys, people, one's own account, sessions.

/// A signed-in browser of the console, as a test drives it over HTTP.
struct Browser<'s> {
    server: &'s Server,
    session: String,
}

impl<'s> Browser<'s> {
    fn sign_in(server: &'s Server, email: &str, password: &str) -> Browser<'s> {
        let answer = sign_in(server, email, password);
        assert_eq!(answer.status, 303, "{email} signs in: {}", answer.body);
        Browser { server, session: session_of(&answer) }
    }

    fn get(&self, path: &str) -> Response {
        page(self.server, path, &self.session)
    }

    /// The session's form token, read from a page as a browser would.
    fn token(&self) -> String {
        let account = self.get("/account");
        assert_eq!(account.status, 200, "{}", account.body);
        account.body.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string()
    }

    /// Posts `body` with the session's token, from the console's own origin.
    fn post(&self, path: &str, body: &str) -> Response {
        let origin = format!("http://{}", self.server.address);
        self.post_raw(path, &format!("csrf={}&{body}", self.token()), &origin)
    }

    fn post_raw(&self, path: &str, body: &str, origin: &str) -> Response {
        let cookie = format!("leadscore_session={}", self.session);
        let headers = [FORM, ("Origin", origin), ("Cookie", cookie.as_str())];
        request(&self.server.address, "POST", path, &headers, body.as_bytes())
    }
}

/// The first number in `text` after `before`.
fn id_after(text: &str, before: &str) -> i64 {
    let rest = text.split(before).nth(1).unwrap_or_else(|| panic!("no `{before}` in {text}"));
    rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap()
}

/// The text of the secret field a creation's answer shows once.
fn shown_secret(body: &str) -> String {
    body.split("class=\"secret-value\" type=\"text\" readonly value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn admin_pages_and_actions_refuse_editors_and_viewers_and_posts_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let (admin_key, _, _) = keys_of_every_scope(dir.path(), "acme");
    create_account(dir.path(), "admin@example.com", "admin");
    create_account(dir.path(), "editor@example.com", "editor");
    create_account(dir.path(), "viewer@example.com", "viewer");
    let server = Server::start(dir.path(), &["--allow-private-webhooks"]);
    let hook = server.post_json(
        "/api/webhooks",
        &admin_key,
        &json!({"url": "http://127.0.0.1:9/hook", "events": ["became_mql"]}),
    );
    assert_eq!(hook.status, 201, "{}", hook.body);
    let hook = hook.json()["id"].as_i64().unwrap();
    let admin = Browser::sign_in(&server, "admin@example.com", PASSWORD);
    let key_id = id_after(&admin.get("/keys").body, "/keys/");

    let pages = [
        "/webhooks".to_string(),
        format!("/webhooks/{hook}"),
        format!("/webhooks/{hook}/delete"),
        "/keys".to_string(),
        format!("/keys/{key_id}/revoke"),
        "/users".to_string(),
        "/users/1".to_string(),
        "/users/1/disable".to_string(),
    ];
    let actions: Vec<(String, &str)> = vec![
        ("/webhooks".to_string(), "url=https%3A%2F%2Fcrm.example.com%2Fhook&events=became_mql"),
        (format!("/webhooks/{hook}/deliveries/1/redeliver"), ""),
        (format!("/webhooks/{hook}/delete"), ""),
        ("/keys".to_string(), "scope=admin"),
        (format!("/keys/{key_id}/revoke"), ""),
        ("/users".to_string(), "email=mallory%40example.com&role=admin&password="),
        ("/users/1/role".to_string(), "role=viewer"),
        ("/users/1/password".to_string(), "password="),
        ("/users/1/disable".to_string(), ""),
        ("/predictive/1/retrain".to_string(), "algorithm=logistic&activate=yes"),
    ];
    for email in ["editor@example.com", "viewer@example.com"] {
        let person = Browser::sign_in(&server, email, PASSWORD);
        let shown = person.get("/leads");
        assert!(!shown.body.contains("href=\"/keys\""), "{email} is not offered the admin pages");
        for path in &pages {
            let refused = person.get(path);
            assert_eq!(refused.status, 403, "{email} GET {path}: {}", refused.body);
            assert!(refused.body.contains("it takes the admin role"), "{}", refused.body);
        }
        for (path, body) in &actions {
            assert_eq!(person.post(path, body).status, 403, "{email} POST {path}");
        }
    }
    // The admin's own posts need the session's token and this origin.
    let origin = format!("http://{}", server.address);
    let token = admin.token();
    for (path, body) in &actions {
        assert_eq!(admin.post_raw(path, body, &origin).status, 403, "POST {path} without a token");
        assert_eq!(admin.post_raw(path, &format!("csrf=forged&{body}"), &origin).status, 403, "{path}: a wrong token");
        let foreign = admin.post_raw(path, &format!("csrf={token}&{body}"), "https://evil.example");
        assert_eq!(foreign.status, 403, "POST {path} from another site");
    }
    // Nothing of it happened.
    assert_eq!(server.get("/api/keys", &admin_key).json()["keys"].as_array().unwrap().len(), 3);
    assert_eq!(server.get("/api/webhooks", &admin_key).json()["webhooks"].as_array().unwrap().len(), 1);
    assert!(!admin.get("/users").body.contains("mallory@example.com"));
    // Every person's own account page and password change are theirs, refused without the token.
    let viewer = Browser::sign_in(&server, "viewer@example.com", PASSWORD);
    assert_eq!(viewer.get("/account").status, 200);
    let change = "current=correct+horse+battery&new=a+new+long+password&again=a+new+long+password";
    assert_eq!(viewer.post_raw("/account/password", change, &origin).status, 403);
    assert_eq!(viewer.post_raw("/account/password", &format!("csrf=forged&{change}"), &origin).status, 403);
    let foreign =
        viewer.post_raw("/account/password", &format!("csrf={}&{change}", viewer.token()), "https://evil.example");
    assert_eq!(foreign.status, 403);
}

#[test]
fn an_admin_creates_a_key_that_is_shown_once_and_revokes_it() {
    let dir = tempfile::tempdir().unwrap();
    create_account(dir.path(), "admin@example.com", "admin");
    let server = Server::start(dir.path(), &[]);
    let admin = Browser::sign_in(&server, "admin@example.com", PASSWORD);
    let empty = admin.get("/keys");
    assert_eq!(empty.status, 200);
    assert!(empty.body.contains("No key yet"), "{}", empty.body);

    let unknown = admin.post("/keys", "scope=owner");
    assert_eq!(unknown.status, 400);
    assert!(unknown.body.contains("Unknown scope `owner`: use ingest, read, admin or browser"), "{}", unknown.body);

    let created = admin.post("/keys", "scope=read&name=Website+tracker+%E2%80%94+%D1%82%D1%80%D0%B5%D0%BA%D0%B5%D1%80");
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = shown_secret(&created.body);
    assert!(secret.starts_with("lsk_") && secret.len() == 68, "{secret}");
    assert!(created.body.contains("it will not be shown again"));
    assert_eq!(server.get("/api/leads", &secret).status, 200, "the key works");

    // Never again: the list shows its prefix only.
    let listed = admin.get("/keys");
    assert!(!listed.body.contains(&secret), "the secret is shown once");
    assert!(listed.body.contains(&secret[..12]), "its prefix is");
    assert!(listed.body.contains("Website tracker — трекер"), "and its name");
    let named = server.get("/api/keys", &secret).status;
    assert_eq!(named, 403, "a read key lists no keys");
    let id = id_after(&listed.body, "/keys/");
    let confirm = admin.get(&format!("/keys/{id}/revoke"));
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("every request that sends it is refused"), "{}", confirm.body);
    assert!(!confirm.body.contains(&secret));
    assert_eq!(admin.get("/keys/999/revoke").status, 404);

    let revoked = admin.post(&format!("/keys/{id}/revoke"), "");
    assert_eq!((revoked.status, revoked.header("location")), (303, Some("/keys")));
    assert_eq!(server.get("/api/leads", &secret).status, 401, "revoked at once");
    let after = admin.get("/keys");
    assert!(after.body.contains("Revoked") && !after.body.contains(&format!("/keys/{id}/revoke")), "{}", after.body);

    // A browser key needs its origins, one a line, and the list shows them.
    let without = admin.post("/keys", "scope=browser&name=Site&origins=");
    assert_eq!(without.status, 400, "{}", without.body);
    assert!(without.body.contains("needs the origins allowed to use it"), "{}", without.body);
    let browser = admin.post(
        "/keys",
        "scope=browser&name=Site&origins=https%3A%2F%2Fwww.example.com%0D%0Ahttp%3A%2F%2Flocalhost%3A8080",
    );
    assert_eq!(browser.status, 201, "{}", browser.body);
    let listed = admin.get("/keys");
    assert!(listed.body.contains("https://www.example.com http://localhost:8080"), "{}", listed.body);
}

#[test]
fn an_admin_subscribes_a_webhook_reads_its_deliveries_and_redelivers_one() {
    let dir = tempfile::tempdir().unwrap();
    let (admin_key, ingest, _) = keys_of_every_scope(dir.path(), "acme");
    create_account(dir.path(), "admin@example.com", "admin");
    let server = Server::start(dir.path(), &["--allow-private-webhooks"]);
    assert_eq!(server.post_text("/api/models", &admin_key, COUNTING_MODEL).status, 201);
    let receiver = Receiver::start(0);
    let admin = Browser::sign_in(&server, "admin@example.com", PASSWORD);
    let encoded = receiver.url.replace(':', "%3A").replace('/', "%2F");

    // Mistakes come back as sentences, with the form as it was typed.
    let ftp = admin.post("/webhooks", "url=ftp%3A%2F%2Fcrm.example.com&events=stage_changed");
    assert_eq!(ftp.status, 400);
    assert!(ftp.body.contains("The address must be an http:// or https:// URL"), "{}", ftp.body);
    assert!(ftp.body.contains("value=\"ftp://crm.example.com\""), "the address stays in the form");
    let no_events = admin.post("/webhooks", &format!("url={encoded}"));
    assert_eq!(no_events.status, 400);
    assert!(no_events.body.contains("The list of notifications is empty: use any of"), "{}", no_events.body);
    let threshold =
        admin.post("/webhooks", &format!("url={encoded}&events=score_crossed&score=activity&threshold=many"));
    assert!(threshold.body.contains("The threshold `many` is not a number"), "{}", threshold.body);

    let created = admin.post(
        "/webhooks",
        &format!("url={encoded}&events=stage_changed&events=score_crossed&score=activity&threshold=-5"),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = shown_secret(&created.body);
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(created.body.contains("Score `activity` is never below -5"), "the API's warning: {}", created.body);
    let listed = admin.get("/webhooks");
    assert!(listed.body.contains(&receiver.url) && !listed.body.contains(&secret), "the secret is shown once");
    let id = id_after(&listed.body, "/webhooks/");

    assert_eq!(
        server
            .post_json("/v1/track", &ingest, &json!({"userId": "w1", "event": "page_view", "messageId": "m1"}))
            .status,
        200
    );
    let moved = server.post_json("/api/leads/w1/stage", &admin_key, &json!({"stage": "sal", "actor": "rep"}));
    assert_eq!(moved.status, 200, "{}", moved.body);
    receiver.wait_for(1);
    let log = loop {
        let log = admin.get(&format!("/webhooks/{id}"));
        if log.body.contains("Delivered") {
            break log;
        }
    };
    assert!(log.body.contains("<code>stage_changed</code>") && log.body.contains("<code>200</code>"), "{}", log.body);
    assert!(!log.body.contains(&secret));
    let delivery = id_after(&log.body, "/deliveries/");
    let again = admin.post(&format!("/webhooks/{id}/deliveries/{delivery}/redeliver"), "");
    assert_eq!((again.status, again.header("location")), (303, Some(&*format!("/webhooks/{id}"))));
    assert_eq!(receiver.wait_for(2).len(), 2, "sent again");
    assert_eq!(admin.post(&format!("/webhooks/{id}/deliveries/999999/redeliver"), "").status, 404);

    // Deleting asks first, then stops it.
    let confirm = admin.get(&format!("/webhooks/{id}/delete"));
    assert!(confirm.body.contains("Notifications still waiting are not sent"), "{}", confirm.body);
    let deleted = admin.post(&format!("/webhooks/{id}/delete"), "");
    assert_eq!((deleted.status, deleted.header("location")), (303, Some("/webhooks")));
    assert!(server.get("/api/webhooks", &admin_key).json()["webhooks"].as_array().unwrap().is_empty());
    assert_eq!(admin.get(&format!("/webhooks/{id}")).status, 404);
}

#[test]
fn an_admin_adds_people_changes_them_and_cannot_remove_the_last_admin() {
    let dir = tempfile::tempdir().unwrap();
    create_account(dir.path(), "admin@example.com", "admin");
    let server = Server::start(dir.path(), &[]);
    let admin = Browser::sign_in(&server, "admin@example.com", PASSWORD);
    let me = id_after(&admin.get("/users").body, "/users/");

    // The last admin can be neither demoted nor disabled.
    let demoted = admin.post(&format!("/users/{me}/role"), "role=editor");
    assert_eq!(demoted.status, 409);
    assert!(
        demoted.body.contains("This is the workspace&#39;s last admin: make another person admin first")
            || demoted.body.contains("This is the workspace's last admin: make another person admin first"),
        "{}",
        demoted.body
    );
    assert_eq!(admin.post(&format!("/users/{me}/disable"), "").status, 409);

    let short = admin.post("/users", "email=ola%40example.pl&role=viewer&password=short");
    assert_eq!(short.status, 400);
    assert!(short.body.contains("The password is too short"), "{}", short.body);
    let not_an_address = admin.post("/users", "email=ola&role=viewer&password=");
    assert!(not_an_address.body.contains("`ola` is not an e-mail address"), "{}", not_an_address.body);

    // A password made up for a new person is shown once, and signs them in.
    let created = admin.post("/users", "email=ola%40example.pl&role=viewer&password=");
    assert_eq!(created.status, 201, "{}", created.body);
    let password = shown_secret(&created.body);
    let ola = Browser::sign_in(&server, "ola@example.pl", &password);
    assert!(!admin.get("/users").body.contains(&password), "shown once");
    let twice = admin.post("/users", "email=OLA%40example.pl&role=viewer&password=");
    assert_eq!(twice.status, 409, "{}", twice.body);

    let users = admin.get("/users");
    let ola_id = id_after(users.body.split("ola@example.pl").next().unwrap().rsplit("/users/").next().unwrap(), "");
    assert_eq!(admin.post(&format!("/users/{ola_id}/role"), "role=admin").status, 303);
    assert!(admin.get(&format!("/users/{ola_id}")).body.contains("badge-role-admin"));
    let demoted = admin.post(&format!("/users/{me}/role"), "role=editor");
    assert_eq!((demoted.status, demoted.header("location")), (303, Some("/leads")), "another admin remains");
    assert_eq!(admin.get("/users").status, 403, "an editor now");
    assert_eq!(ola.get("/keys").status, 200, "ola is an admin now");

    // A new password ends their sessions; disabling keeps them out.
    let reset = ola.post(&format!("/users/{me}/password"), "password=another+long+password");
    assert_eq!(reset.status, 303);
    assert_eq!(admin.get("/leads").header("location"), Some("/sign-in"), "signed out by the reset");
    let admin = Browser::sign_in(&server, "admin@example.com", "another long password");
    assert_eq!(ola.post(&format!("/users/{me}/disable"), "").status, 303);
    assert_eq!(admin.get("/leads").header("location"), Some("/sign-in"), "signed out by disabling");
    assert_eq!(sign_in(&server, "admin@example.com", "another long password").status, 401);
    assert!(ola.get("/users").body.contains("Disabled"));
}

#[test]
fn everyone_changes_their_own_password_and_their_other_sessions_end() {
    let dir = tempfile::tempdir().unwrap();
    create_account(dir.path(), "jan@example.pl", "viewer");
    let server = Server::start(dir.path(), &[]);
    let here = Browser::sign_in(&server, "jan@example.pl", PASSWORD);
    let elsewhere = Browser::sign_in(&server, "jan@example.pl", PASSWORD);

    let wrong = here.post("/account/password", "current=not+it&new=a+new+long+password&again=a+new+long+password");
    assert_eq!(wrong.status, 400);
    assert!(wrong.body.contains("The current password is not right"), "{}", wrong.body);
    let differ = here
        .post("/account/password", "current=correct+horse+battery&new=a+new+long+password&again=a+new+long+passwor");
    assert!(differ.body.contains("The two new passwords differ"), "{}", differ.body);
    let short = here.post("/account/password", "current=correct+horse+battery&new=short&again=short");
    assert!(short.body.contains("The password is too short"), "{}", short.body);

    let changed = here
        .post("/account/password", "current=correct+horse+battery&new=a+new+long+password&again=a+new+long+password");
    assert_eq!((changed.status, changed.header("location")), (303, Some("/account?changed=yes")));
    let here = Browser { server: &server, session: session_of(&changed) };
    assert!(here.get("/account?changed=yes").body.contains("Your password was changed"));
    assert_eq!(elsewhere.get("/leads").header("location"), Some("/sign-in"), "the other session ended");
    assert_eq!(sign_in(&server, "jan@example.pl", PASSWORD).status, 401);
    Browser::sign_in(&server, "jan@example.pl", "a new long password");
}

#[test]
fn a_session_past_its_idle_time_or_its_end_or_signed_out_goes_to_the_sign_in_page() {
    use leadscore_store::{Store, sessions, users};
    const HOUR: i64 = 3_600_000;
    let dir = tempfile::tempdir().unwrap();
    create_account(dir.path(), "ana@example.com", "viewer");
    let server = Server::start(dir.path(), &[]);
    // Sessions opened through the store beside the service, at times in the past: no waiting.
    let store = Store::open(dir.path()).unwrap();
    let (user, _) = store.read_blocking(|c| users::by_email(c, "ana@example.com")).unwrap().unwrap();
    let now = leadscore_store::now_ms();
    let open = |at: i64| {
        let id = user.id;
        store.write_blocking(move |c| sessions::open(c, id, at, 8 * HOUR, 7 * 24 * HOUR)).unwrap().token
    };
    let fresh = open(now);
    assert_eq!(page(&server, "/leads", &fresh).status, 200, "a session opened now is live");
    let idle = open(now - 8 * HOUR - 60_000);
    assert_eq!(page(&server, "/leads", &idle).header("location"), Some("/sign-in"), "idle for over 8 hours");
    let old = open(now - 7 * 24 * HOUR - HOUR);
    let old_id = store.read_blocking({
        let old = old.clone();
        move |c| sessions::live(c, &old, now - 7 * 24 * HOUR)
    });
    assert!(old_id.unwrap().is_some(), "it was live once");
    assert_eq!(page(&server, "/keys", &old).header("location"), Some("/sign-in"), "past its 7 days");

    // Signing out ends the session on the server: its cookie no longer signs anyone in.
    let browser = Browser { server: &server, session: fresh.clone() };
    assert_eq!(browser.post("/sign-out", "").status, 303);
    assert_eq!(page(&server, "/leads", &fresh).header("location"), Some("/sign-in"));
    assert_eq!(page(&server, "/account", &fresh).header("location"), Some("/sign-in"));
}

#[test]
fn everyone_reads_the_predictive_models_and_their_report_and_only_admins_retrain() {
    use crate::serve::{PREDICTIVE_MODEL, lead_with_outcome, put, train_bank_model};
    let dir = tempfile::tempdir().unwrap();
    let (admin_key, ingest, _) = keys_of_every_scope(dir.path(), "acme");
    create_account(dir.path(), "admin@example.com", "admin");
    create_account(dir.path(), "editor@example.com", "editor");
    create_account(dir.path(), "viewer@example.com", "viewer");
    let file = train_bank_model(dir.path());
    let server = Server::start(dir.path(), &[]);
    let viewer = Browser::sign_in(&server, "viewer@example.com", PASSWORD);
    assert!(viewer.get("/predictive").body.contains("No predictive model yet"));
    assert_eq!(put(&server, "/api/predictive-models/conversion", &admin_key, &file).status, 201);
    assert_eq!(server.post_text("/api/models", &admin_key, PREDICTIVE_MODEL).status, 201);

    let listed = viewer.get("/predictive");
    assert_eq!(listed.status, 200);
    assert!(listed.body.contains("Version 1") && listed.body.contains("model v1 (active)"), "{}", listed.body);
    let id = id_after(&listed.body, "/predictive/");
    // Without outcomes, the page says how to get a report, and draws none.
    let page = viewer.get(&format!("/predictive/{id}"));
    assert!(page.body.contains("AUC on held-out leads"), "the figures its file records: {}", page.body);
    assert!(page.body.contains("No evaluation report yet") && !page.body.contains("<iframe"), "{}", page.body);
    assert!(!page.body.contains("Retrain conversion"), "a viewer is offered no retrain");
    assert_eq!(viewer.get(&format!("/predictive/{id}/report")).status, 404);

    for i in 0..3 {
        let customer = json!({"age": 22 + i, "job": "blue-collar", "balance": 100, "poutcome": "failure"});
        lead_with_outcome(&server, &admin_key, &ingest, &format!("c{i}"), customer, "customer");
        let lost = json!({"age": 40 + i, "job": "management", "balance": 2000, "poutcome": "success"});
        lead_with_outcome(&server, &admin_key, &ingest, &format!("l{i}"), lost, "lost");
    }
    let page = viewer.get(&format!("/predictive/{id}"));
    assert!(
        page.body.contains(&format!("<iframe class=\"report-frame\" src=\"/predictive/{id}/report\" sandbox")),
        "{}",
        page.body
    );
    let report = viewer.get(&format!("/predictive/{id}/report"));
    assert_eq!(report.status, 200);
    assert!(
        report.body.contains("<th scope=\"row\">leads</th><td>6</td>") && report.body.contains("<svg"),
        "{}",
        report.body
    );
    let policy = report.header("content-security-policy").unwrap();
    assert!(
        policy.contains("sandbox")
            && policy.contains("default-src 'none'")
            && policy.contains("frame-ancestors 'self'"),
        "{policy}"
    );
    assert_eq!(page.header("content-security-policy").map(|p| p.contains("frame-ancestors 'none'")), Some(true));

    // Retraining is an admin's, posted with the session's token; too few outcomes is a sentence.
    let path = format!("/predictive/{id}/retrain");
    for email in ["viewer@example.com", "editor@example.com"] {
        let person = Browser::sign_in(&server, email, PASSWORD);
        assert_eq!(person.post(&path, "algorithm=logistic&activate=yes").status, 403, "{email}");
    }
    let admin = Browser::sign_in(&server, "admin@example.com", PASSWORD);
    assert!(admin.get(&format!("/predictive/{id}")).body.contains("Retrain conversion"));
    assert_eq!(admin.post_raw(&path, "algorithm=logistic", &format!("http://{}", server.address)).status, 403);
    let early = admin.post(&path, "algorithm=logistic&activate=yes");
    assert_eq!(early.status, 409);
    assert!(
        early.body.contains(
            "Retraining needs at least 20 leads in stage `customer` and 20 in stage `lost`; the workspace has 3 and 3"
        ),
        "{}",
        early.body
    );
    assert_eq!(viewer.get("/predictive/999999").status, 404);
}

#[test]
fn an_admin_exports_and_erases_a_lead_after_confirming_and_no_one_else_can() {
    let dir = tempfile::tempdir().unwrap();
    let (admin_key, ingest, _) = keys_of_every_scope(dir.path(), "acme");
    create_account(dir.path(), "admin@example.com", "admin");
    create_account(dir.path(), "editor@example.com", "editor");
    create_account(dir.path(), "viewer@example.com", "viewer");
    let server = Server::start(dir.path(), &[]);
    let identify = json!({"userId": "u-erase", "messageId": "e1", "traits": {"email": "erase.me@example.org", "name": "Ерофей Стёрин"}});
    assert_eq!(server.post_json("/v1/identify", &ingest, &identify).status, 200);
    let lead = server.get("/api/leads/u-erase", &admin_key).json()["id"].as_i64().unwrap();

    for email in ["editor@example.com", "viewer@example.com"] {
        let person = Browser::sign_in(&server, email, PASSWORD);
        assert!(
            !person.get(&format!("/leads/{lead}")).body.contains("erase this lead"),
            "{email} is not offered erasure"
        );
        assert_eq!(person.get(&format!("/leads/{lead}/erase")).status, 403, "{email}");
        assert_eq!(person.get(&format!("/leads/{lead}/export")).status, 403, "{email}");
        assert_eq!(person.post(&format!("/leads/{lead}/erase"), "").status, 403, "{email}");
    }
    let admin = Browser::sign_in(&server, "admin@example.com", PASSWORD);
    let shown = admin.get(&format!("/leads/{lead}"));
    assert!(shown.body.contains("/erase\">erase this lead</a>"), "{}", shown.body);
    let export = admin.get(&format!("/leads/{lead}/export"));
    assert_eq!(export.status, 200);
    assert_eq!(
        export.header("content-disposition"),
        Some(format!("attachment; filename=\"lead-{lead}.json\"").as_str())
    );
    assert_eq!(export.json()["lead"]["email"], "erase.me@example.org");

    let confirm = admin.get(&format!("/leads/{lead}/erase"));
    assert_eq!(confirm.status, 200);
    let text = text_of(&confirm.body);
    assert!(text.contains("Erase Ерофей Стёрин?") && text.contains("its 1 event"), "{text}");
    let origin = format!("http://{}", server.address);
    assert_eq!(admin.post_raw(&format!("/leads/{lead}/erase"), "", &origin).status, 403, "no token");
    assert_eq!(server.get("/api/leads/u-erase", &admin_key).status, 200, "nothing erased without the token");
    let erased = admin.post(&format!("/leads/{lead}/erase"), "");
    assert_eq!(erased.status, 200, "{}", erased.body);
    assert!(text_of(&erased.body).contains(&format!("Lead {lead} was erased")), "{}", erased.body);
    assert!(text_of(&erased.body).contains("By user admin@example.com"), "{}", erased.body);
    assert_eq!(server.get("/api/leads/u-erase", &admin_key).status, 404);
    let gone = admin.get(&format!("/leads/{lead}"));
    assert_eq!(gone.status, 410);
    assert!(text_of(&gone.body).contains(&format!("Lead {lead} was erased")), "{}", gone.body);
    assert!(!gone.body.contains("erase.me@example.org"));
    assert_eq!(admin.get("/leads/987654/erase").status, 404);
}
