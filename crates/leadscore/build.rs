//! Build script: marks whether Segment's Python library, a browser and Segment's browser library
//! can be tested, so that `tests/it/segment_python.rs`, `tests/it/browser.rs` and
//! `tests/it/website_browser.rs` are reported as ignored, not passed, when they cannot run.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(segment_python)");
    println!("cargo::rustc-check-cfg=cfg(browser)");
    println!("cargo::rustc-check-cfg=cfg(website_browser)");
    println!("cargo::rerun-if-env-changed=LEADSCORE_SEGMENT_PYTHON");
    println!("cargo::rerun-if-env-changed=LEADSCORE_CHROMEDRIVER");
    println!("cargo::rerun-if-env-changed=LEADSCORE_ANALYTICS_NEXT");
    println!("cargo::rerun-if-env-changed=CI");
    let python = std::env::var_os("LEADSCORE_SEGMENT_PYTHON").is_some_and(|p| !p.is_empty());
    // In CI the test always runs, and fails if it has no Python to run with.
    let ci = std::env::var("CI").is_ok_and(|ci| ci == "true");
    if python || ci {
        println!("cargo::rustc-cfg=segment_python");
    }
    // The console's browser tests drive Chromium through its WebDriver (`chromedriver`).
    let chromedriver = std::env::var_os("LEADSCORE_CHROMEDRIVER").is_some_and(|p| !p.is_empty());
    if chromedriver || ci {
        println!("cargo::rustc-cfg=browser");
    }
    // Segment's browser library in Chromium needs the library's build as well.
    let analytics_next = std::env::var_os("LEADSCORE_ANALYTICS_NEXT").is_some_and(|p| !p.is_empty());
    if (chromedriver && analytics_next) || ci {
        println!("cargo::rustc-cfg=website_browser");
    }
}
