//! The browser tests' harness: headless Chromium driven over WebDriver
//! (chromedriver + fantoccini), for the web console's pages.
//!
//! - One `chromedriver` for the whole test binary, started on first use. It runs
//!   under a small `sh` guard in a process group of its own, whose stdin is a pipe
//!   from this process: when the binary exits (normally, by a panic or killed),
//!   the kernel closes the pipe, the guard's `read` returns and it kills the
//!   group — chromedriver and any Chromium a test left behind. Statics are never
//!   dropped, so a `Drop` guard could not do this, and `prctl(PR_SET_PDEATHSIG)`
//!   would need `unsafe` `pre_exec`.
//! - Each [`Browser`] is one WebDriver session (its own Chromium and cookie
//!   jar). `close()` ends it; dropping it without (a failed test) ends it too,
//!   with a blocking request, so its Chromium does not outlive the test.
//! - Sessions are heavy: at most [`SESSIONS`] run at once (a global semaphore);
//!   the others wait for a slot.
//! - Every wait polls a condition up to [`WAIT`]; there are no fixed sleeps. A
//!   wait that fails panics with the URL, the page's text and a screenshot path.
//! - Without Chromium or chromedriver installed, [`Browser::open`] says
//!   "skipped: chromium not installed" and returns `None`; under CI
//!   (`PORTIER_REQUIRE_HOSTILE` set by `.ci/run`) that is a failure instead.
//!
//! ```ignore
//! let Some(b) = Browser::open("fr", DESKTOP.0, DESKTOP.1).await else { return };
//! b.goto(&t.url("/console/")).await;
//! b.fill("input[name=token]", &t.admin).await;
//! b.submit("form#login").await;
//! b.wait_text("h1", "Fenêtres").await;
//! b.screenshot("windows").await;
//! b.close().await;
//! ```

mod journeys;
mod sign_in;
mod smoke;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use fantoccini::cookies::Cookie;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use tokio::sync::{Semaphore, SemaphorePermit};

/// The desktop viewport (CSS pixels).
pub const DESKTOP: (u32, u32) = (1280, 900);
/// The phone viewport (CSS pixels), emulated as a touch device.
pub const PHONE: (u32, u32) = (390, 844);
/// Both, for tests that check a page at each width.
pub const VIEWPORTS: [(u32, u32); 2] = [DESKTOP, PHONE];
/// How long a wait polls before the test fails: generous, for a loaded 2-core box.
pub const WAIT: Duration = Duration::from_secs(20);
/// How many browser sessions may run at once in the test binary.
pub const SESSIONS: usize = 2;

const POLL: Duration = Duration::from_millis(100);
/// Screenshots stop this far down a page (CSS pixels).
const SHOT_MAX_HEIGHT: u32 = 4000;

static SLOTS: Semaphore = Semaphore::const_new(SESSIONS);
static DRIVER: LazyLock<Result<Driver, Unavailable>> = LazyLock::new(Driver::start);

/// Kills chromedriver's process group once this process is gone (stdin at EOF).
/// It prints chromedriver's PID first, so a start that fails is seen at once.
const GUARD: &str = r#"
"$1" --port="$2" >>"$3" 2>&1 </dev/null &
echo "$!"
read -r _ || :
trap '' TERM
kill -TERM 0 2>/dev/null
( sleep 5; kill -KILL 0 ) &
wait "$!" 2>/dev/null
kill -KILL 0
"#;

/// Why no browser session can be had.
enum Unavailable {
    /// Not installed: the test is skipped (outside CI).
    Missing(String),
    /// Installed but did not start: always a failure.
    Broken(String),
}

/// The shared chromedriver.
struct Driver {
    port: u16,
    chromium: PathBuf,
    /// The guard shell; its stdin (the pipe) lives as long as this process.
    _guard: Child,
}

impl Driver {
    fn start() -> Result<Self, Unavailable> {
        let (chromedriver, chromium) = binaries().map_err(Unavailable::Missing)?;
        let log = target_dir().join("chromedriver.log");
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Unavailable::Broken(format!("{}: {e}", dir.display())))?;
        }
        // This run's log only (the guard appends, across retries).
        std::fs::File::create(&log).map_err(|e| Unavailable::Broken(format!("{}: {e}", log.display())))?;
        let mut last = String::new();
        // A free port is found by binding 0 and letting go; another process may
        // take it meanwhile, hence a few tries.
        for _ in 0..3 {
            let port = match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
                Ok(addr) => addr.port(),
                Err(e) => return Err(Unavailable::Broken(format!("no free port: {e}"))),
            };
            let mut guard = Command::new("sh")
                .arg("-c")
                .arg(GUARD)
                .arg("sh")
                .arg(&chromedriver)
                .arg(port.to_string())
                .arg(&log)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .map_err(|e| Unavailable::Broken(format!("sh: {e}")))?;
            match ready(port, &mut guard) {
                Ok(()) => {
                    return Ok(Self {
                        port,
                        chromium,
                        _guard: guard,
                    })
                }
                Err(e) => {
                    last = e;
                    drop(guard.stdin.take());
                    let _ = guard.wait();
                }
            }
        }
        Err(Unavailable::Broken(format!(
            "chromedriver did not start: {last} (see {})",
            log.display()
        )))
    }
}

/// Waits until the chromedriver that `guard` started answers `/status` as ready.
fn ready(port: u16, guard: &mut Child) -> Result<(), String> {
    let mut line = String::new();
    let mut out = guard.stdout.take().ok_or("no stdout")?;
    // The guard prints one line (the PID) right away.
    let mut byte = [0u8; 1];
    while out.read(&mut byte).map_err(|e| e.to_string())? == 1 && byte[0] != b'\n' {
        line.push(char::from(byte[0]));
    }
    let pid: u32 = line.trim().parse().map_err(|_| format!("guard printed {line:?}"))?;
    let start = Instant::now();
    loop {
        if let Ok(status) = driver_http(port, "GET", "/status", None) {
            if status["value"]["ready"] == json!(true) {
                return Ok(());
            }
        }
        // Exited (a zombie until the guard reaps it): e.g. the port was taken.
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if state.is_empty()
            || state
                .rsplit(')')
                .next()
                .is_some_and(|s| s.trim_start().starts_with('Z'))
        {
            return Err(format!("chromedriver exited (port {port})"));
        }
        if start.elapsed() > Duration::from_secs(60) {
            return Err(format!("no answer on port {port} within 60 s"));
        }
        std::thread::sleep(POLL);
    }
}

/// chromedriver and the browser it drives: `PORTIER_CHROMEDRIVER` and
/// `PORTIER_CHROMIUM` if set, else the first found on `PATH`; an `Err` says
/// what is missing.
fn binaries() -> Result<(PathBuf, PathBuf), String> {
    let find = |var: &str, names: &[&str]| -> Result<PathBuf, String> {
        if let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) {
            let path = PathBuf::from(path);
            return if path.is_file() {
                Ok(path)
            } else {
                Err(format!(
                    "chromium not installed ({var}={} is not a file)",
                    path.display()
                ))
            };
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
            .find(|p| p.is_file())
            .ok_or_else(|| format!("chromium not installed (no {} on PATH)", names.join(" or ")))
    };
    // Debian: packages chromium-driver and chromium.
    Ok((
        find("PORTIER_CHROMEDRIVER", &["chromedriver"])?,
        find("PORTIER_CHROMIUM", &["chromium", "chromium-browser", "google-chrome"])?,
    ))
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, else the package's `target`.
pub fn target_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => manifest.join(dir),
        None => manifest.join("target"),
    }
}

/// A blocking request to chromedriver (for the places that cannot await: the
/// start, `Drop`). chromedriver keeps the connection open after its answer, so
/// the body is read by its Content-Length.
fn driver_http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let err = |e: std::io::Error| format!("{method} {path}: {e}");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(err)?;
    conn.set_read_timeout(Some(Duration::from_secs(60))).map_err(err)?;
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(err)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let (head_len, body_len) = loop {
        let n = conn.read(&mut chunk).map_err(err)?;
        if n == 0 {
            return Err(format!("{method} {path}: connection closed before the answer"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or_else(|| format!("{method} {path}: no Content-Length in {head:?}"))?;
            break (end + 4, len);
        }
    };
    while buf.len() < head_len + body_len {
        let n = conn.read(&mut chunk).map_err(err)?;
        if n == 0 {
            return Err(format!("{method} {path}: answer cut short"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    serde_json::from_slice(&buf[head_len..head_len + body_len]).map_err(|e| format!("{method} {path}: {e}"))
}

/// The shared chromedriver, started on first use; `None` (after saying so) when
/// Chromium is not installed and the run does not require it.
async fn driver() -> Option<&'static Driver> {
    let state = tokio::task::spawn_blocking(|| &*DRIVER).await.unwrap();
    match state {
        Ok(driver) => Some(driver),
        Err(Unavailable::Missing(why)) => {
            assert!(
                std::env::var_os("PORTIER_REQUIRE_HOSTILE").is_none(),
                "cannot run browser test: {why} (PORTIER_REQUIRE_HOSTILE is set)"
            );
            eprintln!("skipped: {why}");
            None
        }
        Err(Unavailable::Broken(why)) => panic!("browser tests: {why}"),
    }
}

/// One headless Chromium session: a language, a viewport, a cookie jar.
pub struct Browser {
    client: Client,
    session: String,
    port: u16,
    lang: String,
    /// "desktop", "phone", or "<w>x<h>": the screenshots' suffix.
    label: String,
    closed: bool,
    _slot: SemaphorePermit<'static>,
}

// Some helpers wait for the console's journey tests.
#[allow(dead_code, reason = "a harness: not every helper has a user yet")]
impl Browser {
    /// A session whose Accept-Language is `lang` ("fr", "en"), with a viewport of
    /// `width` x `height` CSS pixels (under 600 wide: emulated as a phone, so the
    /// page's `<meta name=viewport>` counts). `None`: skipped, see the module doc.
    pub async fn open(lang: &str, width: u32, height: u32) -> Option<Self> {
        let driver = driver().await?;
        let slot = SLOTS.acquire().await.unwrap();
        Some(Self::session(driver, lang, (width, height), slot).await)
    }

    /// [`Browser::open`] at [`DESKTOP`].
    pub async fn desktop(lang: &str) -> Option<Self> {
        Self::open(lang, DESKTOP.0, DESKTOP.1).await
    }

    /// [`Browser::open`] at [`PHONE`].
    pub async fn phone(lang: &str) -> Option<Self> {
        Self::open(lang, PHONE.0, PHONE.1).await
    }

    /// Two sessions at once (e.g. an admin and a vendor), their slots taken
    /// together: opening one, then the other, could wait forever on tests that
    /// each hold one slot.
    pub async fn open_two(a: (&str, u32, u32), b: (&str, u32, u32)) -> Option<(Self, Self)> {
        let driver = driver().await?;
        let mut slots = SLOTS.acquire_many(2).await.unwrap();
        let second = slots.split(1).unwrap();
        let first = Self::session(driver, a.0, (a.1, a.2), slots).await;
        let second = Self::session(driver, b.0, (b.1, b.2), second).await;
        Some((first, second))
    }

    async fn session(driver: &Driver, lang: &str, (width, height): (u32, u32), slot: SemaphorePermit<'static>) -> Self {
        let mut args = vec![
            "--headless=new".to_owned(),
            // Root in a container: Chromium's sandbox refuses to run.
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            // /dev/shm is small in containers; a full one crashes tabs.
            "--disable-dev-shm-usage".into(),
            format!("--lang={lang}"),
            format!("--window-size={width},{height}"),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-extensions".into(),
            "--disable-background-networking".into(),
            "--disable-sync".into(),
            "--disable-features=Translate,OptimizationHints,MediaRouter".into(),
            "--password-store=basic".into(),
            "--hide-scrollbars".into(),
            "--force-color-profile=srgb".into(),
        ];
        let mut chrome = json!({
            "binary": driver.chromium,
            // Accept-Language comes from this preference; --lang sets the UI.
            "prefs": { "intl.accept_languages": lang },
        });
        if width < 600 {
            chrome["mobileEmulation"] = json!({
                "deviceMetrics": { "width": width, "height": height, "pixelRatio": 1.0, "mobile": true, "touch": true }
            });
        } else {
            args.push("--force-device-scale-factor=1".into());
        }
        chrome["args"] = json!(args);
        let caps = json!({
            "browserName": "chrome",
            // The test servers' certificates come from a CA of the test's own.
            "acceptInsecureCerts": true,
            "pageLoadStrategy": "normal",
            "timeouts": { "implicit": 0, "pageLoad": 60_000, "script": 30_000 },
            "goog:chromeOptions": chrome,
        });
        let Value::Object(caps) = caps else { unreachable!() };
        let url = format!("http://127.0.0.1:{}", driver.port);
        let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(caps);
        // Starting Chromium on a busy box may fail once; a second try is cheap.
        let client = match builder.connect(&url).await {
            Ok(c) => c,
            Err(first) => match builder.connect(&url).await {
                Ok(c) => c,
                Err(e) => panic!("new browser session: {e} (first try: {first})"),
            },
        };
        let session = client.session_id().await.unwrap().expect("session id");
        if width >= 600 {
            // --window-size is the window's outer size; headless Chromium still
            // keeps room for a toolbar. Grow the window by the difference.
            let inner = client
                .execute("return [window.innerWidth, window.innerHeight]", vec![])
                .await
                .unwrap();
            let (w, h) = (inner[0].as_u64().unwrap_or(0), inner[1].as_u64().unwrap_or(0));
            if (w, h) != (u64::from(width), u64::from(height)) {
                let outer_w = u64::from(width) * 2 - w.min(u64::from(width));
                let outer_h = u64::from(height) * 2 - h.min(u64::from(height));
                client
                    .set_window_size(u32::try_from(outer_w).unwrap(), u32::try_from(outer_h).unwrap())
                    .await
                    .unwrap();
            }
        }
        let label = match (width, height) {
            DESKTOP => "desktop".to_owned(),
            PHONE => "phone".to_owned(),
            (w, h) => format!("{w}x{h}"),
        };
        Self {
            client,
            session,
            port: driver.port,
            lang: lang.to_owned(),
            label,
            closed: false,
            _slot: slot,
        }
    }

    /// Ends the session (Chromium exits) and frees its slot.
    pub async fn close(mut self) {
        match self.client.clone().close().await {
            Ok(()) => self.closed = true,
            // Drop tries again.
            Err(e) => eprintln!("closing the browser session: {e}"),
        }
    }

    /// The fantoccini client, for what the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn lang(&self) -> &str {
        &self.lang
    }

    /// "desktop", "phone" or "<w>x<h>".
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Loads `url` and waits for its load event.
    pub async fn goto(&self, url: &str) {
        if let Err(e) = self.client.goto(url).await {
            self.fail(&format!("goto {url}: {e}")).await;
        }
    }

    pub async fn back(&self) {
        if let Err(e) = self.client.back().await {
            self.fail(&format!("back: {e}")).await;
        }
    }

    pub async fn current_url(&self) -> String {
        self.client.current_url().await.map(String::from).unwrap_or_default()
    }

    /// Waits until `current_url` contains `part`; returns the URL.
    pub async fn wait_url(&self, part: &str) -> String {
        let client = &self.client;
        self.poll(&format!("URL containing {part:?}"), || async move {
            let url = client.current_url().await.map_err(|e| e.to_string())?;
            if url.as_str().contains(part) {
                Ok(url.to_string())
            } else {
                Err(format!("URL is {url}"))
            }
        })
        .await
    }

    /// Waits until an element matches `css`; returns the first.
    pub async fn wait_for(&self, css: &str) -> Element {
        let client = &self.client;
        self.poll(&format!("element {css}"), || async move {
            client.find(Locator::Css(css)).await.map_err(|e| e.to_string())
        })
        .await
    }

    /// Waits until no element matches `css`.
    pub async fn wait_gone(&self, css: &str) {
        let client = &self.client;
        self.poll(&format!("no element {css}"), || async move {
            match client.find_all(Locator::Css(css)).await {
                Ok(found) if found.is_empty() => Ok(()),
                Ok(found) => Err(format!("{} still there", found.len())),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
    }

    /// Waits until an element matching `css` shows text containing `part`;
    /// returns that element's whole text.
    pub async fn wait_text(&self, css: &str, part: &str) -> String {
        let client = &self.client;
        self.poll(&format!("text {part:?} in {css}"), || async move {
            let found = client.find_all(Locator::Css(css)).await.map_err(|e| e.to_string())?;
            let mut seen = Vec::new();
            for el in found {
                if let Ok(text) = el.text().await {
                    if text.contains(part) {
                        return Ok(text);
                    }
                    seen.push(text);
                }
            }
            Err(format!("seen {}", excerpt(&format!("{seen:?}"))))
        })
        .await
    }

    /// The visible text of the first element matching `css` (waited for).
    pub async fn text(&self, css: &str) -> String {
        let el = self.wait_for(css).await;
        match el.text().await {
            Ok(t) => t,
            Err(e) => self.fail(&format!("text of {css}: {e}")).await,
        }
    }

    /// The visible texts of all elements matching `css` now (none: empty).
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let found = self.client.find_all(Locator::Css(css)).await.unwrap_or_default();
        let mut out = Vec::with_capacity(found.len());
        for el in found {
            out.push(el.text().await.unwrap_or_default());
        }
        out
    }

    /// Whether an element matches `css` now (no waiting).
    pub async fn exists(&self, css: &str) -> bool {
        self.client
            .find_all(Locator::Css(css))
            .await
            .is_ok_and(|found| !found.is_empty())
    }

    /// An attribute of the first element matching `css` (waited for).
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let el = self.wait_for(css).await;
        match el.attr(name).await {
            Ok(v) => v,
            Err(e) => self.fail(&format!("attribute {name} of {css}: {e}")).await,
        }
    }

    /// Replaces the value of the field matching `css` by typing `text`.
    pub async fn fill(&self, css: &str, text: &str) {
        let client = &self.client;
        self.poll(&format!("fill {css}"), || async move {
            let el = client.find(Locator::Css(css)).await.map_err(|e| e.to_string())?;
            el.clear().await.map_err(|e| e.to_string())?;
            el.send_keys(text).await.map_err(|e| e.to_string())
        })
        .await;
    }

    /// Chooses the option whose value is `value` in the `<select>` matching `css`.
    pub async fn select(&self, css: &str, value: &str) {
        let client = &self.client;
        self.poll(&format!("select {value:?} in {css}"), || async move {
            let el = client.find(Locator::Css(css)).await.map_err(|e| e.to_string())?;
            el.select_by_value(value).await.map_err(|e| e.to_string())
        })
        .await;
    }

    /// Clicks the element matching `css`, waiting until it is there and
    /// clickable (not covered, not disabled).
    pub async fn click(&self, css: &str) {
        let client = &self.client;
        self.poll(&format!("click {css}"), || async move {
            let el = client.find(Locator::Css(css)).await.map_err(|e| e.to_string())?;
            el.click().await.map_err(|e| e.to_string())
        })
        .await;
    }

    /// Submits the form matching `form_css` as a user does: by clicking its
    /// first submit button (so `required` and other checks apply).
    pub async fn submit(&self, form_css: &str) {
        let client = &self.client;
        self.poll(&format!("submit {form_css}"), || async move {
            let form = client.find(Locator::Css(form_css)).await.map_err(|e| e.to_string())?;
            let button = form
                .find(Locator::Css(
                    "button[type=submit], button:not([type]), input[type=submit]",
                ))
                .await
                .map_err(|e| format!("no submit button: {e}"))?;
            button.click().await.map_err(|e| e.to_string())
        })
        .await;
    }

    /// Runs `script` (a function body: `return …`) in the page.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        match self.client.execute(script, args).await {
            Ok(v) => v,
            Err(e) => self.fail(&format!("script: {e}")).await,
        }
    }

    /// The viewport's size in CSS pixels (`innerWidth`, `innerHeight`).
    pub async fn viewport(&self) -> (u64, u64) {
        let v = self
            .execute("return [window.innerWidth, window.innerHeight]", vec![])
            .await;
        (v[0].as_u64().unwrap_or(0), v[1].as_u64().unwrap_or(0))
    }

    /// The page's HTML as the browser has it now.
    pub async fn source(&self) -> String {
        self.client.source().await.unwrap_or_default()
    }

    /// The cookies the browser would send to the current page.
    pub async fn cookies(&self) -> Vec<Cookie<'static>> {
        match self.client.get_all_cookies().await {
            Ok(c) => c,
            Err(e) => self.fail(&format!("cookies: {e}")).await,
        }
    }

    /// The cookie named `name`, if the current page has it.
    pub async fn cookie(&self, name: &str) -> Option<Cookie<'static>> {
        self.cookies().await.into_iter().find(|c| c.name() == name)
    }

    /// Writes the whole page (not only the viewport; at most 4000 px high) as PNG to
    /// `target/console-screenshots/<lang>/<name>-<label>.png`; returns the path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let path = target_dir()
            .join("console-screenshots")
            .join(&self.lang)
            .join(format!("{name}-{}.png", self.label));
        match self.capture(&path).await {
            Ok(()) => path,
            Err(e) => panic!("screenshot {}: {e}", path.display()),
        }
    }

    async fn capture(&self, path: &Path) -> Result<(), String> {
        use base64::Engine as _;
        // The document's full size (WebDriver's own screenshot stops at the
        // viewport), up to SHOT_MAX_HEIGHT: a huge page costs seconds and megabytes.
        let size = self
            .client
            .execute(
                "const d = document.documentElement; \
                 return [Math.max(d.scrollWidth, innerWidth), Math.min(Math.max(d.scrollHeight, innerHeight), arguments[0])]",
                vec![json!(SHOT_MAX_HEIGHT)],
            )
            .await
            .map_err(|e| e.to_string())?;
        let (port, session) = (self.port, self.session.clone());
        let cdp = json!({
            "cmd": "Page.captureScreenshot",
            "params": {
                "format": "png",
                "captureBeyondViewport": true,
                "clip": { "x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1 },
            },
        });
        let answer = tokio::task::spawn_blocking(move || {
            driver_http(
                port,
                "POST",
                &format!("/session/{session}/goog/cdp/execute"),
                Some(&cdp),
            )
        })
        .await
        .map_err(|e| e.to_string())??;
        let data = answer["value"]["data"]
            .as_str()
            .ok_or_else(|| format!("no image in {}", excerpt(&answer.to_string())))?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| e.to_string())?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        std::fs::write(path, png).map_err(|e| e.to_string())
    }

    /// Polls `f` until it succeeds, for at most [`WAIT`]; then fails the test
    /// with `f`'s last error.
    async fn poll<T, F, Fut>(&self, what: &str, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, String>>,
    {
        let start = Instant::now();
        loop {
            match f().await {
                Ok(v) => return v,
                Err(last) if start.elapsed() >= WAIT => {
                    self.fail(&format!("{what}: not within {} s (last: {last})", WAIT.as_secs()))
                        .await
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// Fails the test, saying where the browser was and what it showed.
    async fn fail(&self, msg: &str) -> ! {
        let url = self.current_url().await;
        let page = self.texts("body").await.join("\n");
        // "click button.x: not within…" -> "click-button-x"
        let what = msg.split(": ").next().unwrap_or(msg);
        let name = what
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        let name: String = name.chars().take(60).collect();
        let path = target_dir()
            .join("console-screenshots")
            .join("failures")
            .join(format!("{name}-{}-{}.png", self.lang, self.label));
        let shot = match self.capture(&path).await {
            Ok(()) => path.display().to_string(),
            Err(e) => format!("none ({e})"),
        };
        panic!(
            "{msg}\n  browser: {} {}\n  at: {url}\n  screenshot: {shot}\n  page text: {}",
            self.lang,
            self.label,
            excerpt(&page)
        )
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.closed {
            // A test that failed (or forgot close()): end the session now, so its
            // Chromium does not run on until the binary exits.
            let _ = driver_http(self.port, "DELETE", &format!("/session/{}", self.session), None);
        }
    }
}

/// At most 500 characters of `s`, for failure messages.
fn excerpt(s: &str) -> String {
    let mut out: String = s.chars().take(500).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}
