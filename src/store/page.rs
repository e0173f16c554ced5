//! Pages of a listing: [`Page`] (which slice to return), [`Cursor`] (where a page ends, so
//! that the next can start there) and [`RecordPage`] (what a store returns).

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use crate::record::{TokenListing, TokenRecord};
use crate::token::TokenId;

/// A place in an owner's listing: just after (or, newest first, just before) one record,
/// whether or not that record is still listed. Take it from a page
/// ([`RecordPage::next`], [`TokenList::next`](crate::TokenList::next)) and give it to
/// [`Page::after`] for the page that follows.
///
/// Its text ([`Display`](fmt::Display), [`FromStr`]) is meant for a URL and is not a
/// promise: hand it out and read it back, do not build it. A cursor is no credential: it
/// only says where a listing of the caller's own tokens resumes, and a made-up one gives a
/// page of those too.
///
/// ```
/// use tokengate::store::Cursor;
///
/// # fn check(cursor: Cursor) {
/// let text = cursor.to_string();
/// assert_eq!(text.parse::<Cursor>(), Ok(cursor));
/// # }
/// assert!("not a cursor".parse::<Cursor>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cursor {
    created_at: SystemTime,
    id: TokenId,
}

impl Cursor {
    /// The place of the record created at `created_at` with this `id`, the key listings
    /// are ordered by.
    pub fn new(created_at: SystemTime, id: TokenId) -> Self {
        Self { created_at, id }
    }

    /// The creation time of the record this cursor follows: stores compare it, then
    /// [`id`](Cursor::id), with their records' (the listing order).
    pub fn created_at(&self) -> SystemTime {
        self.created_at
    }

    /// The id of the record this cursor follows.
    pub fn id(&self) -> TokenId {
        self.id
    }
}

impl From<&TokenRecord> for Cursor {
    /// The place of `record`: a page after it starts with the record that follows it.
    fn from(record: &TokenRecord) -> Self {
        Self::new(record.created_at, record.id)
    }
}

impl From<&TokenListing> for Cursor {
    /// The place of the listed token.
    fn from(listing: &TokenListing) -> Self {
        Self::new(listing.created_at, listing.id)
    }
}

/// Why a text is not a [`Cursor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid listing cursor")]
pub struct InvalidCursor;

/// Nanoseconds since the Unix epoch, negative before it: a cursor keeps the creation time
/// exactly, so that a store holding finer times than milliseconds resumes at the right
/// record.
fn nanos(at: SystemTime) -> i128 {
    match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => after.as_nanos() as i128,
        Err(before) => -(before.duration().as_nanos() as i128),
    }
}

fn from_nanos(nanos: i128) -> Option<SystemTime> {
    let magnitude = nanos.unsigned_abs();
    let seconds = u64::try_from(magnitude / 1_000_000_000).ok()?;
    let offset = Duration::new(seconds, (magnitude % 1_000_000_000) as u32);
    if nanos >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(offset)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(offset)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", nanos(self.created_at), self.id)
    }
}

impl FromStr for Cursor {
    type Err = InvalidCursor;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (time, id) = text.split_once('.').ok_or(InvalidCursor)?;
        // `i128::from_str` takes a leading `+`, which this form never writes.
        if time.starts_with('+') {
            return Err(InvalidCursor);
        }
        let created_at = time
            .parse::<i128>()
            .ok()
            .and_then(from_nanos)
            .ok_or(InvalidCursor)?;
        let id = id.parse::<TokenId>().map_err(|_| InvalidCursor)?;
        Ok(Self::new(created_at, id))
    }
}

/// Which way a listing runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Order {
    /// By creation time, then id, both ascending: the order of the stores' index.
    #[default]
    OldestFirst,
    /// Exactly the reverse: the newest record first.
    NewestFirst,
}

/// Where a page starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    /// After skipping this many records from the start of the listing.
    Offset(u64),
    /// Just after this place.
    After(Cursor),
}

/// Which slice of a listing to return: where it starts, which way it runs
/// ([`Order`]), and how many records it holds at most.
///
/// A page that starts at a [`Cursor`] ([`Page::after`]) costs the same however many
/// records come before it, and a listing read that way page by page, while records are
/// created and revoked, shows every record that was listed all along exactly once: none
/// skipped, none repeated, and none that was revoked before its page was read. That is
/// how to page through a listing. [`Page::number`] skips records instead: its cost grows
/// with the records skipped, and a revocation between two numbered pages moves every
/// later record one place earlier, so the next numbered page skips one; it suits a page
/// chosen by number in a user interface.
///
/// ```
/// use tokengate::store::{Order, Page};
///
/// let first = Page::first(100).newest_first();
/// assert_eq!((first.order(), first.offset(), first.cursor()), (Order::NewestFirst, 0, None));
/// assert_eq!(Page::number(2, 10).offset(), 20);
/// assert_eq!(Page::first(5_000).effective_limit(), 1_000);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    start: Start,
    order: Order,
    limit: u32,
}

impl Page {
    /// The largest page a store returns.
    pub const MAX_LIMIT: u32 = 1_000;

    /// The first `limit` records, oldest first.
    pub fn first(limit: u32) -> Self {
        Self {
            start: Start::Offset(0),
            order: Order::OldestFirst,
            limit,
        }
    }

    /// Page `number` (counted from 0) of pages of `per_page` records, oldest first, as
    /// npm's `?page=&perPage=` asks for them. It skips `number × per_page` records, which
    /// stores read past: prefer [`Page::after`] to page through a listing.
    pub fn number(number: u32, per_page: u32) -> Self {
        Self {
            start: Start::Offset(u64::from(number) * u64::from(per_page)),
            ..Self::first(per_page)
        }
    }

    /// The `limit` records that follow `cursor`, oldest first (call
    /// [`newest_first`](Page::newest_first) for the older ones, newest first). The record
    /// the cursor was taken from is not among them, whether or not it is still listed.
    pub fn after(cursor: Cursor, limit: u32) -> Self {
        Self {
            start: Start::After(cursor),
            ..Self::first(limit)
        }
    }

    /// The same page of the listing in reverse: newest first, so that
    /// `Page::first(n).newest_first()` is the newest `n` records, and a cursor page goes
    /// on towards older records.
    pub fn newest_first(self) -> Self {
        self.in_order(Order::NewestFirst)
    }

    /// The same page in `order`.
    pub fn in_order(self, order: Order) -> Self {
        Self { order, ..self }
    }

    /// Which way the page runs.
    pub fn order(&self) -> Order {
        self.order
    }

    /// Records to skip from the start of the listing (in the page's order) before the
    /// page begins; 0 for a page that starts at a cursor.
    pub fn offset(&self) -> u64 {
        match self.start {
            Start::Offset(offset) => offset,
            Start::After(_) => 0,
        }
    }

    /// The place the page starts after, if it starts at one.
    pub fn cursor(&self) -> Option<Cursor> {
        match self.start {
            Start::Offset(_) => None,
            Start::After(cursor) => Some(cursor),
        }
    }

    /// Most records to return, as asked; stores cap it (see
    /// [`effective_limit`](Page::effective_limit)).
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// `limit` capped at [`Page::MAX_LIMIT`].
    pub fn effective_limit(&self) -> usize {
        self.limit.min(Self::MAX_LIMIT) as usize
    }
}

impl Default for Page {
    /// The first 100 records, oldest first.
    fn default() -> Self {
        Self::first(100)
    }
}

/// One page of an owner's live tokens.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordPage {
    /// The records on this page, in the page's order.
    pub records: Vec<TokenRecord>,
    /// How many live records the owner has in all.
    pub total: u64,
    /// Where the next page starts, when a record follows the last one of this page (in
    /// the page's order); `None` when this page is the last.
    pub next: Option<Cursor>,
}

impl RecordPage {
    /// A page of `records` out of `total` live records; `next` is where the page after it
    /// starts ([`Cursor::from`] its last record), or `None` when no record follows.
    pub fn new(records: Vec<TokenRecord>, total: u64, next: Option<Cursor>) -> Self {
        Self {
            records,
            total,
            next,
        }
    }

    /// The page `page` asked for, from `records`: those that follow the page's start, in
    /// its order, and one more if there is one, which is dropped and tells that a next
    /// page exists. Fetch [`effective_limit`](Page::effective_limit) + 1 records and let
    /// this decide.
    pub fn from_lookahead(page: &Page, mut records: Vec<TokenRecord>, total: u64) -> Self {
        let limit = page.effective_limit();
        let more = records.len() > limit;
        records.truncate(limit);
        let next = if more {
            records.last().map(Cursor::from)
        } else {
            None
        };
        Self::new(records, total, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::sample_record;

    #[test]
    fn cursors_round_trip_as_text() {
        let record = sample_record(SystemTime::UNIX_EPOCH);
        for at in [
            SystemTime::UNIX_EPOCH,
            SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789),
            SystemTime::UNIX_EPOCH - Duration::new(5, 1),
        ] {
            let cursor = Cursor::new(at, record.id);
            let text = cursor.to_string();
            assert_eq!(text.parse::<Cursor>(), Ok(cursor), "{text}");
        }
    }

    #[test]
    fn bad_cursors_are_refused() {
        let id = sample_record(SystemTime::UNIX_EPOCH).id;
        for bad in [
            String::new(),
            "12".into(),
            format!("12{id}"),
            format!(".{id}"),
            format!("+12.{id}"),
            format!("1.2.{id}"),
            format!("12.{id}x"),
            format!("{}.{id}", i128::MAX),
            "12.short".into(),
        ] {
            assert_eq!(bad.parse::<Cursor>(), Err(InvalidCursor), "{bad}");
        }
    }

    #[test]
    fn a_lookahead_record_means_a_next_page() {
        let records: Vec<TokenRecord> = (0..3)
            .map(|i| sample_record(SystemTime::UNIX_EPOCH + Duration::from_secs(i)))
            .collect();
        let page = Page::first(2);
        let full = RecordPage::from_lookahead(&page, records.clone(), 3);
        assert_eq!(full.records, records[..2]);
        assert_eq!(full.next, Some(Cursor::from(&records[1])));
        let last = RecordPage::from_lookahead(&page, records[..2].to_vec(), 2);
        assert_eq!((last.records.len(), last.next), (2, None));
        let empty = RecordPage::from_lookahead(&page, Vec::new(), 0);
        assert_eq!(empty, RecordPage::default());
    }
}
