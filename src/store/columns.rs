//! How a record is laid out in SQL columns: shared by the SQLite and PostgreSQL stores so
//! that both read and write exactly the same shapes.

use std::time::{Duration, SystemTime};

use super::StoreError;
use crate::access::{Grants, Permission};
use crate::cidr::CidrList;
use crate::digest::TokenDigest;
use crate::record::{SecondFactor, TokenKind, TokenRecord};
use crate::token::TokenId;

/// The columns of the token table, in the order every query names them.
pub(crate) const COLUMNS: &str = "id, owner, digest, access, cidr, created_at, expires_at, \
     revoked_at, name, description, last_used_at, grants, kind, second_factor";

/// `access` of a token with grants on particular resources. Releases before grants
/// existed cannot read it, so an older node sharing the database refuses such a token
/// (as corrupt) rather than take it for a read-write one.
const GRANULAR: &str = "granular";

/// Ids as read back from the `id` column, or [`StoreError::Corrupt`] naming (the start of)
/// one that is not an id.
pub(crate) fn token_ids(ids: Vec<String>) -> Result<Vec<TokenId>, StoreError> {
    ids.into_iter()
        .map(|id| {
            id.parse::<TokenId>()
                .map_err(|_| StoreError::Corrupt(format!("token {id:.11}: bad id")))
        })
        .collect()
}

/// A record as plain column values. Times are milliseconds since the Unix epoch.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) id: String,
    pub(crate) owner: String,
    pub(crate) digest: Vec<u8>,
    pub(crate) access: String,
    pub(crate) cidr: String,
    pub(crate) created_at: i64,
    pub(crate) expires_at: Option<i64>,
    pub(crate) revoked_at: Option<i64>,
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) last_used_at: Option<i64>,
    /// `<permission> <pattern>` lines; `NULL` in rows written before grants existed, whose
    /// `access` is then a grant on everything.
    pub(crate) grants: Option<String>,
    pub(crate) kind: String,
    pub(crate) second_factor: String,
}

impl Row {
    pub(crate) fn from_record(record: &TokenRecord) -> Self {
        Self {
            id: record.id.to_string(),
            owner: record.owner.clone(),
            digest: record.digest.as_bytes().to_vec(),
            access: match record.grants.on_everything() {
                // Stage-only is newer than every `access` reader but the grants column's:
                // a release that knows only `access` must refuse it, not guess.
                Some(Permission::ReadStage) | None => GRANULAR.to_owned(),
                Some(permission) => permission.as_str().to_owned(),
            },
            cidr: record.cidr.to_strings().join(","),
            created_at: millis(record.created_at),
            expires_at: record.expires_at.map(millis),
            revoked_at: record.revoked_at.map(millis),
            name: record.name.clone(),
            description: record.description.clone(),
            last_used_at: record.last_used_at.map(millis),
            grants: Some(record.grants.to_string()),
            kind: record.kind.as_str().to_owned(),
            second_factor: record.second_factor.as_str().to_owned(),
        }
    }

    /// The record, or [`StoreError::Corrupt`] naming the column that cannot be read.
    pub(crate) fn into_record(self) -> Result<TokenRecord, StoreError> {
        let corrupt =
            |what: &str| StoreError::Corrupt(format!("token {:.11}: bad {what}", self.id));
        let id = self.id.parse::<TokenId>().map_err(|_| corrupt("id"))?;
        let digest = TokenDigest::from_slice(&self.digest).map_err(|_| corrupt("digest"))?;
        let grants = match &self.grants {
            Some(text) => text.parse().map_err(|_| corrupt("grants"))?,
            None => Grants::everything(
                self.access
                    .parse::<Permission>()
                    .map_err(|_| corrupt("access"))?,
            ),
        };
        let kind: TokenKind = self.kind.parse().map_err(|_| corrupt("kind"))?;
        let second_factor: SecondFactor = self
            .second_factor
            .parse()
            .map_err(|_| corrupt("second_factor"))?;
        let cidr = if self.cidr.is_empty() {
            CidrList::any()
        } else {
            CidrList::parse(self.cidr.split(',')).map_err(|_| corrupt("cidr"))?
        };
        let mut record = TokenRecord::new(id, self.owner, digest, time(self.created_at));
        record.grants = grants;
        record.kind = kind;
        record.second_factor = second_factor;
        record.cidr = cidr;
        record.expires_at = self.expires_at.map(time);
        record.revoked_at = self.revoked_at.map(time);
        record.name = self.name;
        record.description = self.description;
        record.last_used_at = self.last_used_at.map(time);
        Ok(record)
    }
}

/// Milliseconds since the Unix epoch, negative before it, saturating far out.
pub(crate) fn millis(at: SystemTime) -> i64 {
    match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |m| -m),
    }
}

/// The instant `millis` milliseconds from the Unix epoch.
pub(crate) fn time(millis: i64) -> SystemTime {
    let offset = Duration::from_millis(millis.unsigned_abs());
    if millis >= 0 {
        SystemTime::UNIX_EPOCH + offset
    } else {
        SystemTime::UNIX_EPOCH - offset
    }
}

/// A page offset as SQL wants it.
pub(crate) fn sql_offset(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{Grant, ResourcePattern};
    use crate::record::tests::sample_record;

    #[test]
    fn times_round_trip_to_the_millisecond() {
        for ms in [0, 1, 1_700_000_000_123, -5_000] {
            assert_eq!(millis(time(ms)), ms);
        }
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(
            time(millis(t)),
            SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
        );
    }

    #[test]
    fn records_round_trip() {
        let t0 = time(1_700_000_000_000);
        let granular = Grants::new([
            Grant::new(
                ResourcePattern::parse("@acme/*").unwrap(),
                Permission::ReadWrite,
            ),
            Grant::new(
                ResourcePattern::parse("left-pad").unwrap(),
                Permission::NoAccess,
            ),
            Grant::new(ResourcePattern::All, Permission::ReadOnly),
        ])
        .unwrap();
        for grants in [
            Grants::everything(Permission::ReadOnly),
            Grants::everything(Permission::ReadStage),
            granular,
        ] {
            let record = TokenRecord {
                grants,
                kind: TokenKind::Session,
                second_factor: SecondFactor::Bypassed,
                cidr: CidrList::parse(["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]).unwrap(),
                expires_at: Some(time(1_800_000_000_000)),
                revoked_at: Some(t0),
                name: Some("CI, \"quoted\"".into()),
                description: Some("multi\nline".into()),
                last_used_at: Some(t0),
                ..sample_record(t0)
            };
            assert_eq!(Row::from_record(&record).into_record().unwrap(), record);
        }
    }

    #[test]
    fn rows_from_before_grants_read_as_a_grant_on_everything() {
        for (access, permission) in [
            ("read-only", Permission::ReadOnly),
            ("read-write", Permission::ReadWrite),
        ] {
            let mut row = Row::from_record(&sample_record(time(0)));
            row.access = access.into();
            row.grants = None;
            let record = row.into_record().unwrap();
            assert_eq!(record.grants, Grants::everything(permission));
            assert_eq!(record.kind, TokenKind::Standard);
        }
    }

    #[test]
    fn a_stage_only_row_cannot_pass_for_a_classic_one() {
        let mut record = sample_record(time(0));
        record.grants = Grants::everything(Permission::ReadStage);
        let row = Row::from_record(&record);
        assert_eq!(row.access, GRANULAR, "a release without grants refuses it");
        assert_eq!(row.grants.as_deref(), Some("read-stage *"));
    }

    #[test]
    fn granular_rows_cannot_pass_for_classic_ones() {
        let mut record = sample_record(time(0));
        record.grants = Grants::new([Grant::new(
            ResourcePattern::Exact("foo".into()),
            Permission::ReadWrite,
        )])
        .unwrap();
        let row = Row::from_record(&record);
        assert_eq!(row.access, GRANULAR);
        assert!(row.access.parse::<Permission>().is_err());
    }

    #[test]
    fn bad_columns_are_named() {
        let good = || Row::from_record(&sample_record(time(0)));
        let cases: Vec<(Row, &str)> = vec![
            (
                Row {
                    id: "nope".into(),
                    ..good()
                },
                "bad id",
            ),
            (
                Row {
                    digest: vec![1, 2],
                    ..good()
                },
                "bad digest",
            ),
            (
                Row {
                    access: "admin".into(),
                    grants: None,
                    ..good()
                },
                "bad access",
            ),
            (
                Row {
                    grants: Some("read-write a*b".into()),
                    ..good()
                },
                "bad grants",
            ),
            (
                Row {
                    kind: "admin".into(),
                    ..good()
                },
                "bad kind",
            ),
            (
                Row {
                    second_factor: "maybe".into(),
                    ..good()
                },
                "bad second_factor",
            ),
            (
                Row {
                    cidr: "10.0.0.0/8,junk".into(),
                    ..good()
                },
                "bad cidr",
            ),
        ];
        for (row, expected) in cases {
            let error = row.into_record().unwrap_err();
            assert!(matches!(error, StoreError::Corrupt(_)));
            assert!(error.to_string().contains(expected), "{error}");
        }
    }
}
