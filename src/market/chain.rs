//! A group's fallback chain as data: an ordered list of sources (SPEC §5.2), each asked in
//! turn for what the ones before it did not give, by one helper.

use super::guard::Provider;
use super::http::{Call, FetchError, Upstream};
use super::snapshot::{Coin, Invalid};

type Parse<'a, T> = Box<dyn Fn(&[u8]) -> Result<T, Invalid> + Send + Sync + 'a>;
/// A request to one source and the parser of its answer.
type Request<'a, T> = (Result<Call, Invalid>, Parse<'a, T>);
/// How a source is asked for what is still wanted.
type Ask<'a, W, T> = Box<dyn FnOnce(&W) -> Request<'a, T> + Send + 'a>;

/// One source in a group's fallback chain (SPEC §5.2): its name, its provider's guard, and
/// how to ask it for what is still wanted. A source that is not configured is not in the
/// chain.
pub(super) struct Link<'a, W, T> {
    name: &'static str,
    provider: &'a Provider,
    ask: Ask<'a, W, T>,
}

impl<'a, W, T: 'a> Link<'a, W, T> {
    /// A source asked for the coins still missing, and parsed for those only.
    pub(super) fn asking<P>(
        name: &'static str,
        provider: &'a Provider,
        ask: impl FnOnce(&[Coin]) -> (Result<Call, Invalid>, P) + Send + 'a,
    ) -> Self
    where
        W: AsRef<[Coin]>,
        P: Fn(&[u8], &[Coin]) -> Result<T, Invalid> + Send + Sync + 'a,
    {
        Link {
            name,
            provider,
            ask: Box::new(move |want: &W| {
                let want = want.as_ref().to_vec();
                let (call, parse) = ask(&want);
                (call, Box::new(move |b: &[u8]| parse(b, &want)))
            }),
        }
    }

    /// A source asked the same whatever is still wanted.
    pub(super) fn once(
        name: &'static str,
        provider: &'a Provider,
        call: Result<Call, Invalid>,
        parse: impl Fn(&[u8]) -> Result<T, Invalid> + Send + Sync + 'a,
    ) -> Self {
        Link {
            name,
            provider,
            ask: Box::new(move |_: &W| (call, Box::new(parse))),
        }
    }
}

/// Asks the links of a group's fallback chain in order, each for what `wanted` still
/// lacks, until `done`; `take` records each answer. Returns the failures, by source.
pub(super) async fn ask_in_order<'a, W, T>(
    upstream: Option<&Upstream>,
    chain: impl IntoIterator<Item = Link<'a, W, T>>,
    wanted: &mut W,
    done: impl Fn(&W) -> bool,
    mut take: impl FnMut(&mut W, T, &'static str),
) -> Vec<String> {
    let mut errors = Vec::new();
    for link in chain {
        if done(wanted) {
            break;
        }
        let (call, parse) = (link.ask)(wanted);
        match fetch(upstream, link.provider, call, parse).await {
            Ok(v) => take(wanted, v, link.name),
            Err(e) => errors.push(format!("{}: {e}", link.name)),
        }
    }
    errors
}

/// The first answer of a chain whose every link gives the whole value.
pub(super) async fn first_of<'a, T>(
    upstream: Option<&Upstream>,
    chain: impl IntoIterator<Item = Link<'a, Option<(T, &'static str)>, T>>,
) -> (Option<(T, &'static str)>, Vec<String>) {
    let mut found = None;
    let errors = ask_in_order(
        upstream,
        chain,
        &mut found,
        Option::is_some,
        |found, v, name| {
            *found = Some((v, name));
        },
    )
    .await;
    (found, errors)
}

/// One call to `provider`, failing as a transport error when there is no HTTP client.
pub(super) async fn fetch<T>(
    upstream: Option<&Upstream>,
    provider: &Provider,
    call: Result<Call, Invalid>,
    parse: impl Fn(&[u8]) -> Result<T, Invalid>,
) -> Result<T, FetchError> {
    let Some(upstream) = upstream else {
        return Err(FetchError::Transport("no HTTP client".into()));
    };
    upstream.request(provider, call, parse).await
}
