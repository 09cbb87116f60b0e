//! Hexadecimal numbers in human-readable formats (JSON: `"0xa02082"`), plain
//! integers in compact ones (postcard), so one type serves both.

use alloc::format;
use alloc::string::String;
use serde::de::Error;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

fn to_hex<S: Serializer>(value: u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{value:#x}"))
}

fn from_hex<E: Error>(text: &str) -> Result<u64, E> {
    let digits = text
        .strip_prefix("0x")
        .ok_or_else(|| E::custom("expected a 0x-prefixed hex number"))?;
    u64::from_str_radix(digits, 16).map_err(E::custom)
}

pub mod u64 {
    use super::*;

    pub fn serialize<S: Serializer>(value: &u64, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            to_hex(*value, s)
        } else {
            value.serialize(s)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        if d.is_human_readable() {
            from_hex(&String::deserialize(d)?)
        } else {
            <u64 as Deserialize>::deserialize(d)
        }
    }
}

pub mod opt_u64 {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            match value {
                Some(v) => s.serialize_some(&format!("{v:#x}")),
                None => s.serialize_none(),
            }
        } else {
            value.serialize(s)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        if d.is_human_readable() {
            Option::<String>::deserialize(d)?
                .map(|t| from_hex(&t))
                .transpose()
        } else {
            Option::<u64>::deserialize(d)
        }
    }
}

pub mod opt_u32 {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
        super::opt_u64::serialize(&value.map(u64::from), s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        super::opt_u64::deserialize(d)?
            .map(|v| u32::try_from(v).map_err(D::Error::custom))
            .transpose()
    }
}
