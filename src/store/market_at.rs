//! The market at each report's publication: values recorded when a report was published, and
//! the providers' daily history kept for reports published before that. Values are bytes here;
//! their shape belongs to the `since` module.

use redb::ReadableDatabase;

use super::{DAILY_COVERED, MARKET_AT, MARKET_DAILY, Result, Store, db_err};

impl Store {
    /// The market values recorded when report `id` was published, if any.
    pub fn market_at(&self, id: u64) -> Result<Option<Vec<u8>>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(MARKET_AT).map_err(db_err)?;
        Ok(table.get(id).map_err(db_err)?.map(|v| v.value().to_vec()))
    }

    /// Stores daily values of `series` and the days they cover, in one transaction.
    pub fn daily_put(
        &self,
        series: &str,
        points: &[(i64, Vec<u8>)],
        covered: (i64, i64),
    ) -> Result<()> {
        self.write(|tx| {
            let mut table = tx.open_table(MARKET_DAILY).map_err(db_err)?;
            for (day, bytes) in points {
                table
                    .insert((series, *day), bytes.as_slice())
                    .map_err(db_err)?;
            }
            tx.open_table(DAILY_COVERED)
                .map_err(db_err)?
                .insert(series, covered)
                .map_err(db_err)?;
            Ok(())
        })
    }

    /// The days (first, last, unix ms) the stored history of `series` covers.
    pub fn daily_covered(&self, series: &str) -> Result<Option<(i64, i64)>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(DAILY_COVERED).map_err(db_err)?;
        Ok(table.get(series).map_err(db_err)?.map(|v| v.value()))
    }

    /// The latest daily value of `series` at or before `at_ms`, if it is not older than
    /// `not_before_ms`: (day in unix ms, bytes).
    pub fn daily_at(
        &self,
        series: &str,
        at_ms: i64,
        not_before_ms: i64,
    ) -> Result<Option<(i64, Vec<u8>)>> {
        let tx = self.db.begin_read().map_err(db_err)?;
        let table = tx.open_table(MARKET_DAILY).map_err(db_err)?;
        let last = table
            .range((series, not_before_ms)..=(series, at_ms))
            .map_err(db_err)?
            .next_back();
        match last {
            Some(entry) => {
                let (k, v) = entry.map_err(db_err)?;
                Ok(Some((k.value().1, v.value().to_vec())))
            }
            None => Ok(None),
        }
    }
}
