//! The report page in a real browser: headless Chromium, driven over
//! WebDriver by chromedriver. The page must load with no console errors, and
//! the pool animation must advance when the test presses play and when it
//! moves the slider.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without them the test
//! says so and passes, so a plain `cargo test` works anywhere; CI installs both
//! and sets `POOLBED_REQUIRE_BROWSER=1`, which turns a missing browser into a
//! failure.

mod common;

use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver, killed when the test ends however it ends.
struct Driver {
    child: Child,
    base: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(status) = driver.get("/status") {
                if status["value"]["ready"] == json!(true) {
                    return driver;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready in 20 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn get(&self, path: &str) -> Result<Value, ureq::Error> {
        ureq::get(&format!("{}{path}", self.base))
            .call()?
            .body_mut()
            .read_json()
    }

    fn post(&self, path: &str, body: Value) -> Value {
        let reply: Value = ureq::post(&format!("{}{path}", self.base))
            .config()
            .http_status_as_error(false)
            .build()
            .send_json(body)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
            .body_mut()
            .read_json()
            .unwrap_or_else(|e| panic!("POST {path}: reply is not JSON: {e}"));
        if let Some(error) = reply["value"].get("error") {
            panic!(
                "POST {path}: WebDriver error {error}: {}",
                reply["value"]["message"]
            );
        }
        reply
    }
}

/// One browser session on one page.
struct Page<'d> {
    driver: &'d Driver,
    session: String,
}

impl Drop for Page<'_> {
    fn drop(&mut self) {
        let _ = ureq::delete(&format!("{}/session/{}", self.driver.base, self.session)).call();
    }
}

impl<'d> Page<'d> {
    fn open(driver: &'d Driver, file: &Path, profile: &Path) -> Page<'d> {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,1000",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let reply = driver.post(
            "/session",
            json!({ "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
                "goog:loggingPrefs": { "browser": "ALL" }
            }}}),
        );
        let session = reply["value"]["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        let page = Page { driver, session };
        page.post(
            "url",
            json!({ "url": format!("file://{}", file.display()) }),
        );
        page
    }

    fn post(&self, command: &str, body: Value) -> Value {
        self.driver
            .post(&format!("/session/{}/{command}", self.session), body)["value"]
            .take()
    }

    fn script(&self, source: &str) -> Value {
        self.post("execute/sync", json!({ "script": source, "args": [] }))
    }

    /// The animation's frame and a fingerprint of what the first pool bar shows.
    fn drawn(&self) -> (i64, String) {
        let v = self.script(
            "return [document.getElementById('animation').getAttribute('data-frame'),
                     document.getElementById('pool-canvas-0').toDataURL()];",
        );
        let frame = v[0]
            .as_str()
            .and_then(|f| f.parse().ok())
            .expect("data-frame is a number");
        (frame, v[1].as_str().expect("a data URL").to_string())
    }

    fn click(&self, css: &str) {
        let element = self.post("element", json!({ "using": "css selector", "value": css }));
        let id = element
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_string();
        self.post(&format!("element/{id}/click"), json!({}));
    }

    /// Console messages at error level (chromedriver's browser log).
    fn console_errors(&self) -> Vec<String> {
        let entries = self.post("se/log", json!({ "type": "browser" }));
        entries
            .as_array()
            .expect("log entries")
            .iter()
            .filter(|e| e["level"] == json!("SEVERE"))
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "gave up after 15 s waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn page_loads_without_errors_and_the_pool_animation_advances() {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if !missing.is_empty() {
        let required = std::env::var_os("POOLBED_REQUIRE_BROWSER").is_some();
        assert!(
            !required,
            "POOLBED_REQUIRE_BROWSER is set but {missing:?} is not installed"
        );
        eprintln!("skipped: {missing:?} not installed (apt-get install chromium chromium-driver)");
        return;
    }
    let dir = common::test_dir("browser");
    let written = report::write_dir(&common::collector(common::Shape::default()), &dir).unwrap();
    let page_file = written
        .file("index.html")
        .expect("index.html written")
        .to_path_buf();
    let profile = dir.join("chromium-profile");

    let driver = Driver::start();
    let page = Page::open(&driver, &page_file, &profile);

    let (first_frame, first_picture) = page.drawn();
    assert_eq!(first_frame, 0, "the animation starts at its first frame");

    page.click("#anim-play");
    let mut played = (first_frame, first_picture.clone());
    wait_until("playback moves past frame 2", || {
        played = page.drawn();
        played.0 > 2
    });
    assert_ne!(
        played.1, first_picture,
        "playback advanced the frame but the pool bar did not change"
    );

    page.click("#anim-play"); // pause
    page.script(
        "var s = document.getElementById('anim-slider');
         s.value = s.max; s.dispatchEvent(new Event('input'));",
    );
    let (last_frame, last_picture) = page.drawn();
    let max: i64 = page
        .script("return document.getElementById('anim-slider').max;")
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        last_frame, max,
        "moving the slider to its end shows the last frame"
    );
    assert_ne!(
        last_picture, first_picture,
        "the last frame draws a different pool than the first"
    );

    let errors = page.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}
