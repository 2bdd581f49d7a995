//! Full-text search over every report in both languages: a tantivy index derived from the
//! store, kept beside it in the data directory, updated by the publish path (the index is one
//! of its subscribers) and brought back in line with the store by itself when it is missing
//! or stale. Queries are ranked (BM25), paginated, optionally restricted to a date range, and
//! come back with marked snippets. Vietnamese is written in syllables: words typed side by side
//! are matched side by side (see `search/query.rs`), with or without accents (`search/text.rs`).

pub mod budget;
mod indexer;
pub mod limits;
mod phrases;
mod query;
mod snippet;
mod text;

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::{Directory, DirectoryLock, Lock};
use tantivy::query::{Query, RangeQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::{DocAddress, Index, IndexReader, ReloadPolicy, Searcher, Term};
use tokio::sync::{mpsc, watch};

use self::budget::{Budget, Budgeted, Stopped};
pub use self::limits::QueryProblem;
pub use self::text::{ReportText, fold};
use crate::i18n::Lang;
use crate::reports::cards::{self, CardedRead};
use crate::reports::publish::{Change, Origin, Subscriber};
use crate::store::{Store, StoreError};
use crate::tasks::Background;
pub use crate::workers::{Pool, PoolSettings, PoolStats};

/// The index's folder in the data directory; the number changes with the schema, so a
/// release that changes it builds a new index instead of misreading the old one.
pub const DIR_NAME: &str = "search-v5";
/// Folders of earlier schemas, removed when found (derived data nobody reads any more).
/// v2 indexed folded words only; v3 kept positions of titles; v4 kept a copy of every
/// report's text for the snippets, which are now made from the store.
const OLD_DIRS: &[&str] = &["search-v1", "search-v2", "search-v3", "search-v4"];
pub const PER_PAGE: usize = 10;
/// Deepest result a query may page to: past it, ranking far-down hits costs work for nobody.
pub const MAX_OFFSET: usize = 1_000;
/// The best-scored matches of a query with words typed side by side that are ranked by
/// whether they hold them together: every result a reader can page to. Past them a report
/// is not looked at for its phrases, so a query's cost stays bounded as the archive grows
/// (each phrase is looked for in these reports only, never in every report holding its
/// words).
const RANKED: usize = MAX_OFFSET;
/// Characters of text around the matches in a snippet.
const SNIPPET_CHARS: usize = 220;
/// This process's claim on the index folder, held for the index's life: a second index of
/// the same folder in this process (a state being replaced) keeps its own in memory.
const CLAIM_FILE: &str = "crypto-report.lock";

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("search index directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("search task failed: {0}")]
    Join(String),
    /// The query asks for more than a query may (see `limits`).
    #[error(transparent)]
    Query(#[from] QueryProblem),
    #[error(transparent)]
    Pool(#[from] crate::workers::Refused),
    #[error("the search took longer than it may")]
    OutOfTime,
    #[error("the search was given up")]
    Cancelled,
}

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    created: Field,
    all: Field,
    title_vi: Field,
    title_en: Field,
}

/// Field names of the schema (fast fields are read by name).
const ID: &str = "id";
const TERM_HI: &str = "term_hi";
const TERM_LO: &str = "term_lo";

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    // Nothing is stored: a hit's text is read from the store (see `Search::hits`).
    let id = b.add_u64_field(ID, INDEXED | FAST);
    let created = b.add_i64_field("created", INDEXED | FAST);
    // The report's digest term (see `store::digest_term`) in two halves: tells which reports
    // the index holds, and in which version, without reading a document.
    b.add_u64_field(TERM_HI, FAST);
    b.add_u64_field(TERM_LO, FAST);
    let indexed = TextFieldIndexing::default()
        .set_tokenizer(text::SYLLABLES)
        .set_index_option(IndexRecordOption::WithFreqsAndPositions);
    // Titles rank single words (no phrase is looked for there): no positions.
    let titles = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(text::SYLLABLES)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        id,
        created,
        // Every word of the report, both languages, in one field: a query reads one posting
        // list per word, not one per field and language.
        all: b.add_text_field("all", TextOptions::default().set_indexing_options(indexed)),
        // Titles are indexed again on their own, to rank a match there higher.
        title_vi: b.add_text_field("title_vi", titles.clone()),
        title_en: b.add_text_field("title_en", titles),
    };
    (b.build(), fields)
}

/// What a reader asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchQuery {
    pub text: String,
    /// Reports published at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Reports published before this instant.
    pub until: Option<DateTime<Utc>>,
    /// 1-based.
    pub page: usize,
}

/// Text with the matched words marked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Snippet {
    /// The text in pieces; `hit` marks a matched word.
    pub pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Piece {
    pub text: String,
    pub hit: bool,
}

impl Snippet {
    fn plain(text: &str) -> Snippet {
        Snippet {
            pieces: vec![Piece {
                text: text.to_owned(),
                hit: false,
            }],
        }
    }

    pub fn has_hits(&self) -> bool {
        self.pieces.iter().any(|p| p.hit)
    }

    pub fn text(&self) -> String {
        self.pieces.iter().map(|p| p.text.as_str()).collect()
    }
}

/// One language of a hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HitSide {
    pub title: String,
    pub snippet: Snippet,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub id: u64,
    pub created_at: DateTime<Utc>,
    pub score: f32,
    /// The report holds words the reader typed side by side only apart: it ranks below
    /// every report holding them together.
    pub apart: bool,
    pub vi: HitSide,
    /// `None` for a report without its own English text.
    pub en: Option<HitSide>,
}

impl Hit {
    /// The snippet a reader of `lang` is shown, and its language: the reader's language
    /// where it has a match, else the other language's where that has one (the hit was found
    /// there), else the reader's language (Vietnamese for a report without English).
    pub fn shown(&self, lang: Lang) -> (&Snippet, Lang) {
        let vi = (&self.vi.snippet, Lang::Vi);
        let Some(en) = self.en.as_ref().map(|e| (&e.snippet, Lang::En)) else {
            return vi;
        };
        let (own, other) = match lang {
            Lang::En => (en, vi),
            Lang::Vi => (vi, en),
        };
        if !own.0.has_hits() && other.0.has_hits() {
            other
        } else {
            own
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Results {
    pub total: usize,
    pub page: usize,
    pub pages: usize,
    pub hits: Vec<Hit>,
}

/// How far the index is from the store, for the search page and `/health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The index is being brought in line with the store, or a published batch is not
    /// searchable yet (results may be missing).
    pub catching_up: bool,
    pub documents: u64,
    /// The last indexing pass failed (a full disk, a write error) and is being retried;
    /// `None` while indexing works.
    pub failing: Option<Failing>,
}

/// An indexing pass that failed, and when it is tried again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failing {
    pub error: String,
    /// Passes failed in a row.
    pub attempts: u32,
    pub since: DateTime<Utc>,
    pub next_attempt: DateTime<Utc>,
}

/// The search index; cheap to clone.
#[derive(Clone)]
pub struct Search(Arc<Inner>);

struct Inner {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// Held while a writer is open (the indexing task's; tantivy allows one per index). A
    /// writer lives for one pass and is dropped after it: no thread or buffer at rest.
    writing: Mutex<()>,
    /// The claim on the index folder ([`CLAIM_FILE`]; a file lock, nothing else).
    _claim: DirectoryLock,
    /// The failure being retried, if any.
    failing: Mutex<Option<Failing>>,
    store: Arc<Store>,
    queue: mpsc::UnboundedSender<Vec<u64>>,
    pending: Mutex<Option<mpsc::UnboundedReceiver<Vec<u64>>>>,
    started: AtomicBool,
    /// Batches handed to the indexer, and (watched) how many it has finished.
    requested: AtomicU64,
    done: watch::Sender<u64>,
    catching_up: AtomicBool,
    where_: Option<PathBuf>,
}

impl std::fmt::Debug for Search {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Search")
            .field("dir", &self.0.where_)
            .finish_non_exhaustive()
    }
}

impl Search {
    /// Opens (or creates) the index beside the store, in `<data dir>/search-v5` ([`DIR_NAME`]).
    /// An index that cannot be opened (damaged, or written by another version) is derived
    /// data: it is removed and built again. Where even that fails, the index lives in memory. Indexing
    /// starts with [`Search::start`].
    pub fn open(store: Arc<Store>) -> Search {
        let dir = store
            .path()
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .join(DIR_NAME);
        match Search::open_in(&dir, Arc::clone(&store)) {
            Ok(s) => s,
            // Another index of this process still writes there (a state being replaced): the
            // files are fine and not ours to remove.
            Err(SearchError::Index(tantivy::TantivyError::LockFailure(..))) => {
                tracing::warn!(dir = %dir.display(), "search index busy; keeping this one in memory");
                Search::in_memory(store)
            }
            Err(first) => {
                tracing::warn!(dir = %dir.display(), error = %first, "search index unusable; building it again");
                let _ = std::fs::remove_dir_all(&dir);
                Search::open_in(&dir, Arc::clone(&store)).unwrap_or_else(|e| {
                    tracing::error!(dir = %dir.display(), error = %e, "cannot keep the search index on disk; keeping it in memory");
                    Search::in_memory(store)
                })
            }
        }
    }

    fn open_in(dir: &Path, store: Arc<Store>) -> Result<Search, SearchError> {
        std::fs::create_dir_all(dir).map_err(|source| SearchError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        if let Some(parent) = dir.parent() {
            for old in OLD_DIRS {
                let _ = std::fs::remove_dir_all(parent.join(old));
            }
        }
        let directory = tantivy::directory::MmapDirectory::open(dir)
            .map_err(|e| SearchError::Index(e.into()))?;
        Search::in_directory(directory, store, Some(dir.to_owned()))
    }

    /// An index in memory only, built from the store at every start.
    pub fn in_memory(store: Arc<Store>) -> Search {
        Search::in_directory(tantivy::directory::RamDirectory::create(), store, None)
            .expect("a fresh index in memory always opens")
    }

    /// The index kept in `directory` (created there when absent); `where_` names it in logs.
    fn in_directory(
        directory: impl Directory,
        store: Arc<Store>,
        where_: Option<PathBuf>,
    ) -> Result<Search, SearchError> {
        let claim = directory
            .acquire_lock(&Lock {
                filepath: PathBuf::from(CLAIM_FILE),
                is_blocking: false,
            })
            .map_err(|e| SearchError::Index(tantivy::TantivyError::LockFailure(e, None)))?;
        let (schema, fields) = schema();
        let index = Index::open_or_create(directory, schema)?;
        index
            .tokenizers()
            .register(text::SYLLABLES, text::analyzer());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let (queue, pending) = mpsc::unbounded_channel();
        Ok(Search(Arc::new(Inner {
            index,
            reader,
            fields,
            writing: Mutex::new(()),
            _claim: claim,
            failing: Mutex::new(None),
            store,
            queue,
            pending: Mutex::new(Some(pending)),
            started: AtomicBool::new(false),
            requested: AtomicU64::new(0),
            done: watch::channel(0).0,
            catching_up: AtomicBool::new(true),
            where_,
        })))
    }

    /// Starts the indexing task in `background` (once; later calls do nothing): it first
    /// brings the index in line with the store, then indexes what the publish path reports.
    /// Must be called inside a Tokio runtime.
    pub fn start(&self, background: &Background) {
        if self.0.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(rx) = self
            .0
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        // The task holds the index weakly: it ends when the last handle goes.
        let this = Arc::downgrade(&self.0);
        background.spawn("search index", move |stop| indexer::run(this, rx, stop));
    }

    /// Waits until every change published before this call is searchable (and the first
    /// catch-up with the store is over). For tests and benchmarks.
    pub async fn settled(&self) {
        let wanted = self.0.requested.load(Ordering::Acquire);
        let mut done = self.0.done.subscribe();
        let _ = done
            .wait_for(|d| *d >= wanted && !self.0.catching_up.load(Ordering::Acquire))
            .await;
    }

    /// Catching up: the first catch-up with the store is not over, or a batch the publish
    /// path handed over (a sync pass, an import) is not searchable yet.
    pub fn status(&self) -> Status {
        let waiting = self.0.requested.load(Ordering::Acquire) > *self.0.done.borrow();
        let failing = self
            .0
            .failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Status {
            catching_up: self.0.catching_up.load(Ordering::Acquire) || waiting,
            documents: self.0.reader.searcher().num_docs(),
            failing,
        }
    }

    /// Runs `query` (blocking: call it from the blocking pool) within the default budget of
    /// [`Pool`]. An empty text finds nothing.
    pub fn search(&self, query: &SearchQuery) -> Result<Results, SearchError> {
        self.search_within(query, &Budget::of(PoolSettings::default().budget))
    }

    /// Runs `query` on a thread of `pool` within the pool's budget, stopped if this future is
    /// dropped first.
    pub async fn search_in(&self, pool: &Pool, query: SearchQuery) -> Result<Results, SearchError> {
        let search = self.clone();
        pool.run(move |budget| search.search_within(&query, budget))
            .await?
    }

    /// Runs `query` (blocking) until `budget` is spent: then it stops and says why. Reports
    /// holding every group of words together come first; those holding some only apart
    /// follow (see [`query::Plan`]).
    pub fn search_within(
        &self,
        query: &SearchQuery,
        budget: &Budget,
    ) -> Result<Results, SearchError> {
        let parsed = query::parse(&query.text);
        limits::check(&query.text, &parsed)?;
        let page = query.page.max(1);
        let offset = (page - 1).saturating_mul(PER_PAGE);
        let f = self.0.fields;
        if parsed.is_empty() || offset >= MAX_OFFSET {
            return Ok(Results {
                total: 0,
                page,
                pages: 0,
                hits: Vec::new(),
            });
        }
        let range = (query.from.is_some() || query.until.is_some()).then(|| {
            let bound = |at: Option<DateTime<Utc>>, inclusive: bool| match at {
                None => Bound::Unbounded,
                Some(t) => {
                    let term = Term::from_field_i64(f.created, t.timestamp_micros());
                    if inclusive {
                        Bound::Included(term)
                    } else {
                        Bound::Excluded(term)
                    }
                }
            };
            Box::new(RangeQuery::new(
                bound(query.from, true),
                bound(query.until, false),
            )) as Box<dyn Query>
        });
        let targets = query::Targets {
            all: f.all,
            titles: [f.title_vi, f.title_en],
        };
        let searcher = self.0.reader.searcher();
        let plan = parsed.plan(&searcher, targets, range)?;
        stopped(budget)?;
        let full = Budgeted::new(plan.query, budget.clone());
        let (total, found): (usize, Vec<(f32, DocAddress, bool)>) = match plan.ranking {
            None => {
                let collector = TopDocs::with_limit(PER_PAGE)
                    .and_offset(offset)
                    .order_by_score();
                let (n, top) = searcher.search(&full, &(Count, collector))?;
                (n, top.into_iter().map(|(s, a)| (s, a, false)).collect())
            }
            Some(ranking) => {
                // Every result a reader can reach, ranked again by the phrases they hold.
                let best = TopDocs::with_limit(RANKED).order_by_score();
                let (n, best) = searcher.search(&full, &(Count, best))?;
                let ranked = ranking.rank(&searcher, best, offset + PER_PAGE, budget)?;
                (n, ranked.into_iter().skip(offset).take(PER_PAGE).collect())
            }
        };
        stopped(budget)?;
        let hits = self.hits(&searcher, &found, &parsed, budget)?;
        let reachable = total.min(MAX_OFFSET);
        Ok(Results {
            total,
            page,
            pages: reachable.div_ceil(PER_PAGE),
            hits,
        })
    }
}

impl Search {
    /// The hits of `found` (score, address, held only apart), their titles and snippets made
    /// from the reports as the store holds them now (the index keeps no text). A report gone
    /// from the store, or damaged, since it was indexed is left out.
    fn hits(
        &self,
        searcher: &Searcher,
        found: &[(f32, DocAddress, bool)],
        parsed: &query::Parsed,
        budget: &Budget,
    ) -> Result<Vec<Hit>, SearchError> {
        let mut ids = Vec::with_capacity(found.len());
        for (_, address, _) in found {
            let ids_of = searcher
                .segment_reader(address.segment_ord)
                .fast_fields()
                .u64(ID)?;
            ids.push(ids_of.first(address.doc_id));
        }
        let wanted: Vec<u64> = ids.iter().flatten().copied().collect();
        let mut read: std::collections::HashMap<u64, CardedRead> =
            cards::with_reports(&self.0.store, &wanted)?
                .into_iter()
                .collect();
        let mut hits = Vec::with_capacity(found.len());
        for ((score, _, apart), id) in found.iter().zip(ids) {
            stopped(budget)?;
            let Some(Ok(Some(carded))) = id.and_then(|id| read.remove(&id)) else {
                continue;
            };
            let text = ReportText::of(&carded.report, &carded.card);
            let side = |side: &text::Side, vietnamese: bool| HitSide {
                title: side.title.clone(),
                snippet: snippet::snippet(&side.body, parsed, vietnamese, SNIPPET_CHARS)
                    .unwrap_or_else(|| Snippet::plain(&opening(&side.body))),
            };
            hits.push(Hit {
                id: carded.report.id,
                created_at: carded.report.created_at,
                score: *score,
                apart: *apart,
                vi: side(&text.vi, true),
                en: text.en.as_ref().map(|en| side(en, false)),
            });
        }
        Ok(hits)
    }
}

/// The error of a search whose budget ran out.
fn stopped(budget: &Budget) -> Result<(), SearchError> {
    budget.check().map_err(|why| match why {
        Stopped::OutOfTime => SearchError::OutOfTime,
        Stopped::Cancelled => SearchError::Cancelled,
    })
}

/// The start of a text, cut on a word, for a hit whose body has no match to show.
fn opening(text: &str) -> String {
    crate::reports::cut_on_word(text, SNIPPET_CHARS)
}

/// The publish path tells the index what changed; the indexing task does the work.
impl Subscriber for Search {
    fn changed(&self, change: &Change, _origin: Origin) {
        let Change::Published(change) = change else {
            return;
        };
        let mut ids: Vec<u64> = change.new.iter().map(|r| r.id).collect();
        ids.extend(&change.updated);
        if ids.is_empty() {
            return;
        }
        self.0.requested.fetch_add(1, Ordering::AcqRel);
        // Fails only once the task is gone (shutdown): the next start catches up.
        let _ = self.0.queue.send(ids);
    }
}

#[cfg(test)]
mod tests;
