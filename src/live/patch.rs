//! The changes between two JSON snapshots, in the shape the browser merges back into the
//! older one (`merge` in `assets/js/market.js`).

use std::cmp::Reverse;

use serde_json::{Map, Value};

/// The member naming an array's splice in a patch: `{"$splice": [drop, keep, tail]}` turns
/// the older array `a` into `a[drop..drop + keep] ++ tail`. No snapshot has such a member.
pub const SPLICE: &str = "$splice";
/// Most leading elements a splice drops: an array that moved further goes whole.
const MAX_DROP: usize = 16;

/// How a changed array is carried in a patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrays {
    /// Whole, as every client understands.
    Whole,
    /// As a splice of the older one where that is shorter (a sliding window such as the
    /// sparkline: a point dropped at the start, one changed or added at the end), for clients
    /// that said they merge splices.
    Spliced,
}

/// What turns `old` into `new` when merged into it: objects are compared member by member and
/// only the members that differ are kept (a member `new` lacks becomes `null`); arrays go
/// whole or, with [`Arrays::Spliced`], as a splice; anything else is replaced whole. `None`
/// when they are equal. Unlike RFC 7396, `null` sets a value rather than removing it: a
/// snapshot's members never go away, they only become `null`.
pub fn merge_patch(old: &Value, new: &Value, arrays: Arrays) -> Option<Value> {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = Map::new();
            for (key, value) in new {
                let changed = match old.get(key) {
                    Some(before) => merge_patch(before, value, arrays),
                    None => Some(value.clone()),
                };
                if let Some(changed) = changed {
                    patch.insert(key.clone(), changed);
                }
            }
            for key in old.keys().filter(|k| !new.contains_key(*k)) {
                patch.insert(key.clone(), Value::Null);
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        (Value::Array(before), Value::Array(after)) if arrays == Arrays::Spliced => {
            (before != after).then(|| splice(before, after).unwrap_or_else(|| new.clone()))
        }
        _ => (old != new).then(|| new.clone()),
    }
}

/// `new` as a splice of `old`, when most of it is a run of `old`'s elements from one of its
/// first [`MAX_DROP`] positions.
fn splice(old: &[Value], new: &[Value]) -> Option<Value> {
    let (drop, keep) = (0..=old.len().min(MAX_DROP))
        .map(|drop| (drop, common_prefix(&old[drop..], new)))
        .max_by_key(|&(drop, keep)| (keep, Reverse(drop)))?;
    if keep == 0 || keep * 2 < new.len() {
        return None;
    }
    let tail = Value::Array(new[keep..].to_vec());
    let mut patch = Map::new();
    patch.insert(
        SPLICE.to_owned(),
        Value::from(vec![drop.into(), keep.into(), tail]),
    );
    Some(Value::Object(patch))
}

fn common_prefix(a: &[Value], b: &[Value]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::market::Snapshot;

    /// The browser's side, as `market.js` does it.
    fn merge(base: &Value, patch: &Value) -> Value {
        if let (Value::Array(base), Some(splice)) = (base, patch.get(SPLICE)) {
            let drop = splice[0].as_u64().expect("drop") as usize;
            let keep = splice[1].as_u64().expect("keep") as usize;
            let mut out = base[drop..drop + keep].to_vec();
            out.extend(splice[2].as_array().expect("tail").iter().cloned());
            return Value::Array(out);
        }
        match (base, patch) {
            (Value::Object(base), Value::Object(patch)) => {
                let mut out = base.clone();
                for (key, value) in patch {
                    let merged = merge(base.get(key).unwrap_or(&Value::Null), value);
                    out.insert(key.clone(), merged);
                }
                Value::Object(out)
            }
            _ => patch.clone(),
        }
    }

    #[test]
    fn keeps_only_what_changed() {
        let old = json!({
            "price": 1.5, "name": "BTC", "gone": 1, "none": null,
            "freshness": { "a": { "at": "t1", "stale": false }, "b": { "at": "t1", "stale": false } },
            "spark": [[1, 2.0], [2, 3.0]],
        });
        let new = json!({
            "price": 1.6, "name": "BTC", "none": null, "added": [1],
            "freshness": { "a": { "at": "t2", "stale": false }, "b": { "at": "t1", "stale": false } },
            "spark": [[1, 2.0], [2, 3.5]],
        });
        let patch = merge_patch(&old, &new, Arrays::Whole).expect("changed");
        assert_eq!(
            patch,
            json!({
                "price": 1.6, "gone": null, "added": [1],
                "freshness": { "a": { "at": "t2" } },
                "spark": [[1, 2.0], [2, 3.5]],
            })
        );
        assert_eq!(merge_patch(&new, &new, Arrays::Whole), None);
    }

    #[test]
    fn values_that_change_kind_are_replaced_whole() {
        let patch = merge_patch(
            &json!({ "a": { "x": 1 } }),
            &json!({ "a": null }),
            Arrays::Whole,
        );
        assert_eq!(patch, Some(json!({ "a": null })));
        let patch = merge_patch(
            &json!({ "a": null }),
            &json!({ "a": { "x": 1 } }),
            Arrays::Whole,
        );
        assert_eq!(patch, Some(json!({ "a": { "x": 1 } })));
        assert_eq!(
            merge_patch(&json!(1), &json!("1"), Arrays::Whole),
            Some(json!("1"))
        );
    }

    #[test]
    fn merging_the_patch_gives_the_new_snapshot() {
        let old = serde_json::to_value(Snapshot::default()).expect("json");
        let mut newer = Snapshot {
            demo: true,
            btc_sparkline: vec![(1, 84_000.0), (2, 84_100.5)],
            ..Snapshot::default()
        };
        let new = serde_json::to_value(&newer).expect("json");
        let patch = merge_patch(&old, &new, Arrays::Whole).expect("changed");
        assert!(patch.get("btc_price_usd").is_none(), "{patch}");
        assert_eq!(merge(&old, &patch), new);

        newer.btc_sparkline.pop();
        let newest = serde_json::to_value(&newer).expect("json");
        let patch = merge_patch(&new, &newest, Arrays::Whole).expect("changed");
        assert_eq!(patch, json!({ "btc_sparkline": [[1, 84_000.0]] }));
        assert_eq!(merge(&new, &patch), newest);
    }

    #[test]
    fn a_sliding_window_goes_as_a_splice_to_clients_that_merge_splices() {
        let points = |from: i64, to: i64| -> Value {
            (from..to).map(|t| json!([t, t as f64 * 1.5])).collect()
        };
        let old = json!({ "spark": points(0, 96), "price": 1 });
        // One point dropped at the start, the last one changed, one added.
        let mut moved = points(1, 96);
        let last = moved
            .as_array_mut()
            .expect("array")
            .last_mut()
            .expect("point");
        *last = json!([95, 0.5]);
        moved.as_array_mut().expect("array").push(json!([96, 2.0]));
        let new = json!({ "spark": moved, "price": 1 });

        let patch = merge_patch(&old, &new, Arrays::Spliced).expect("changed");
        assert_eq!(
            patch,
            json!({ "spark": { SPLICE: [1, 94, [[95, 0.5], [96, 2.0]]] } })
        );
        assert_eq!(merge(&old, &patch), new);
        assert!(patch.to_string().len() * 10 < new.to_string().len());
        // Older clients get the array whole.
        let whole = merge_patch(&old, &new, Arrays::Whole).expect("changed");
        assert_eq!(whole["spark"], new["spark"]);
        assert_eq!(merge(&old, &whole), new);
    }

    #[test]
    fn arrays_with_little_in_common_go_whole() {
        let old = json!({ "a": [1, 2, 3, 4], "b": [1, 2], "c": [] });
        let new = json!({ "a": [9, 8, 7, 4], "b": [1, 2], "c": [5] });
        let patch = merge_patch(&old, &new, Arrays::Spliced).expect("changed");
        assert_eq!(patch, json!({ "a": [9, 8, 7, 4], "c": [5] }));
        assert_eq!(merge(&old, &patch), new);
        // Shrinking to a prefix is a splice with nothing added.
        let shorter = json!({ "a": [1, 2, 3, 4], "b": [1], "c": [] });
        let back = json!({ "a": [1, 2, 3], "b": [1], "c": [] });
        let patch = merge_patch(&shorter, &back, Arrays::Spliced).expect("changed");
        assert_eq!(patch, json!({ "a": { SPLICE: [0, 3, []] } }));
        assert_eq!(merge(&shorter, &patch), back);
    }
}
