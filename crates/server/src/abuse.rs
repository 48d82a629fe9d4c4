//! Limits on what public browser keys let anyone send: a token bucket per key and one per client
//! address (`429 rate_limited` with `Retry-After`), a cap on the new anonymous leads an address
//! may make per hour, and known bots (crawlers, and headless browsers unless allowed) ignored or
//! marked. Ingest and admin keys are secrets held by servers, and are not limited here.
//!
//! Memory is bounded whatever arrives: each table holds at most [`TABLE_LIMIT`] entries. When a
//! table is full, entries that no longer limit anything (a full bucket, an hour that has passed)
//! are dropped; if none can be, a newcomer is refused rather than remembered, so that a flood
//! from many addresses costs a refusal, not memory. Time is a parameter (`now`), so that tests
//! need no clock.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most entries a table of buckets or hourly counts holds.
pub const TABLE_LIMIT: usize = 100_000;

/// A token bucket's rate: `burst` requests at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

/// What to do with a request whose `User-Agent` is a known bot's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bots {
    /// Answer as if stored, store nothing.
    Ignore,
    /// Store, with `bot: true` in the message's properties and traits, for a model to test.
    Mark,
    /// Store as any other message.
    Allow,
}

/// The limits on browser keys, set by `leadscore serve`'s flags.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests per browser key (every page of a website shares it).
    pub per_key: Rate,
    /// Requests per client address with a browser key.
    pub per_address: Rate,
    /// New anonymous leads one client address may make per hour.
    pub anonymous_per_address_per_hour: u32,
    pub bots: Bots,
    /// Whether headless browsers (automated ones: `HeadlessChrome`, Puppeteer, Playwright) count
    /// as visitors rather than bots.
    pub allow_headless: bool,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            per_key: Rate { per_second: 200.0, burst: 1_000.0 },
            per_address: Rate { per_second: 5.0, burst: 50.0 },
            anonymous_per_address_per_hour: 100,
            bots: Bots::Ignore,
            allow_headless: false,
        }
    }
}

/// Parts of the user agents of crawlers and automated browsers, lower-cased.
const CRAWLERS: &[&str] = &[
    "bot",
    "crawler",
    "spider",
    "slurp",
    "crawling",
    "facebookexternalhit",
    "embedly",
    "lighthouse",
    "pingdom",
    "uptimerobot",
    "curl/",
    "wget/",
    "python-requests",
    "go-http-client",
    "java/",
    "okhttp",
    "phantomjs",
];
const HEADLESS: &[&str] = &["headlesschrome", "headless", "puppeteer", "playwright", "selenium", "webdriver"];

/// Whether `user_agent` is a known bot's (a missing one is: every browser sends one).
pub fn is_bot(user_agent: Option<&str>, allow_headless: bool) -> bool {
    let Some(agent) = user_agent.map(str::to_ascii_lowercase).filter(|a| !a.trim().is_empty()) else { return true };
    CRAWLERS.iter().any(|part| agent.contains(part))
        || (!allow_headless && HEADLESS.iter().any(|part| agent.contains(part)))
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key (a key id, a client address).
pub struct Buckets<K> {
    rate: Rate,
    table: Mutex<HashMap<K, Bucket>>,
    limit: usize,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    pub fn new(rate: Rate) -> Buckets<K> {
        Buckets::with_limit(rate, TABLE_LIMIT)
    }

    fn with_limit(rate: Rate, limit: usize) -> Buckets<K> {
        Buckets { rate, table: Mutex::new(HashMap::new()), limit }
    }

    /// Takes one token for `key` at `now`: `Ok` if there was one, else how long until there is.
    pub fn take(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let Ok(mut table) = self.table.lock() else { return Ok(()) };
        let rate = self.rate;
        let refilled = |bucket: &Bucket| {
            (bucket.tokens + now.saturating_duration_since(bucket.at).as_secs_f64() * rate.per_second).min(rate.burst)
        };
        if !table.contains_key(key) && table.len() >= self.limit {
            // A full bucket limits nothing: forgetting it changes no answer.
            table.retain(|_, bucket| refilled(bucket) < rate.burst);
            if table.len() >= self.limit {
                return Err(Duration::from_secs(1));
            }
        }
        let bucket = table.entry(key.clone()).or_insert(Bucket { tokens: rate.burst, at: now });
        bucket.tokens = refilled(bucket);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate.per_second.max(f64::MIN_POSITIVE)))
        }
    }

    pub fn len(&self) -> usize {
        self.table.lock().map_or(0, |table| table.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// New anonymous leads per client address, counted per hour from an address's first.
pub struct AnonymousCap {
    per_hour: u32,
    table: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    limit: usize,
}

const HOUR: Duration = Duration::from_secs(3600);

impl AnonymousCap {
    pub fn new(per_hour: u32) -> AnonymousCap {
        AnonymousCap::with_limit(per_hour, TABLE_LIMIT)
    }

    fn with_limit(per_hour: u32, limit: usize) -> AnonymousCap {
        AnonymousCap { per_hour, table: Mutex::new(HashMap::new()), limit }
    }

    /// Reserves up to `wanted` new anonymous leads for `address` at `now`; returns how many it may
    /// make. Give back what it did not use with [`AnonymousCap::give_back`].
    pub fn reserve(&self, address: IpAddr, wanted: u32, now: Instant) -> u32 {
        let Ok(mut table) = self.table.lock() else { return 0 };
        if !table.contains_key(&address) && table.len() >= self.limit {
            table.retain(|_, (since, _)| now.saturating_duration_since(*since) < HOUR);
            if table.len() >= self.limit {
                return 0;
            }
        }
        let (since, used) = table.entry(address).or_insert((now, 0));
        if now.saturating_duration_since(*since) >= HOUR {
            (*since, *used) = (now, 0);
        }
        let granted = wanted.min(self.per_hour.saturating_sub(*used));
        *used += granted;
        granted
    }

    /// Returns `unused` of a reservation.
    pub fn give_back(&self, address: IpAddr, unused: u32) {
        if let Ok(mut table) = self.table.lock()
            && let Some((_, used)) = table.get_mut(&address)
        {
            *used = used.saturating_sub(unused);
        }
    }

    pub fn len(&self) -> usize {
        self.table.lock().map_or(0, |table| table.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The limits' state, shared by every request.
pub struct Guard {
    pub limits: Limits,
    pub keys: Buckets<i64>,
    pub addresses: Buckets<IpAddr>,
    pub anonymous: AnonymousCap,
}

impl Guard {
    pub fn new(limits: Limits) -> Guard {
        Guard {
            keys: Buckets::new(limits.per_key),
            addresses: Buckets::new(limits.per_address),
            anonymous: AnonymousCap::new(limits.anonymous_per_address_per_hour),
            limits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate { per_second: 2.0, burst: 3.0 };

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate_and_says_when_to_retry() {
        let buckets = Buckets::new(RATE);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(buckets.take(&1, start), Ok(()));
        }
        assert_eq!(buckets.take(&1, start), Err(Duration::from_millis(500)));
        assert_eq!(buckets.take(&2, start), Ok(()), "another key has its own bucket");
        // Half a second later, one token.
        let later = start + Duration::from_millis(500);
        assert_eq!(buckets.take(&1, later), Ok(()));
        assert!(buckets.take(&1, later).is_err());
        // Never more than the burst, however long it waited.
        let much_later = later + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(buckets.take(&1, much_later), Ok(()));
        }
        assert!(buckets.take(&1, much_later).is_err());
    }

    #[test]
    fn a_full_table_forgets_full_buckets_and_refuses_newcomers_when_none_is() {
        let buckets = Buckets::with_limit(RATE, 2);
        let start = Instant::now();
        assert!(buckets.take(&1, start).is_ok());
        assert!(buckets.take(&2, start).is_ok());
        assert!(buckets.take(&3, start).is_err(), "full of buckets that still limit");
        assert_eq!(buckets.len(), 2);
        // Once bucket 1 and 2 are full again, they are forgotten for 3.
        let later = start + Duration::from_secs(2);
        assert!(buckets.take(&3, later).is_ok());
        assert!(buckets.len() <= 2);
    }

    #[test]
    fn an_address_makes_at_most_its_anonymous_leads_per_hour() {
        let cap = AnonymousCap::with_limit(5, 2);
        let start = Instant::now();
        let home: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(cap.reserve(home, 3, start), 3);
        cap.give_back(home, 1);
        assert_eq!(cap.reserve(home, 10, start), 3, "5 an hour, 2 used");
        assert_eq!(cap.reserve(home, 1, start + Duration::from_secs(3599)), 0);
        assert_eq!(cap.reserve(home, 10, start + HOUR), 5, "a new hour");
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.2".parse().unwrap(), "192.0.2.3".parse().unwrap());
        assert_eq!(cap.reserve(a, 1, start + HOUR), 1);
        assert_eq!(cap.reserve(b, 1, start + HOUR), 0, "a full table refuses newcomers");
        assert_eq!(cap.len(), 2);
    }

    #[test]
    fn crawlers_and_headless_browsers_are_bots_unless_headless_ones_are_allowed() {
        let chrome =
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";
        let headless =
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0 Safari/537.36";
        let google = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
        assert!(!is_bot(Some(chrome), false));
        assert!(is_bot(Some(headless), false));
        assert!(!is_bot(Some(headless), true));
        assert!(is_bot(Some(google), true));
        assert!(is_bot(None, true), "every browser sends a user agent");
        assert!(is_bot(Some(" "), true));
    }
}
