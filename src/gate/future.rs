//! [`ResponseFuture`]: the future of a [`TokenAuth`](crate::TokenAuth) call.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::Response;
use pin_project_lite::pin_project;
use tower::Service;

use super::body::ResponseBody;

/// The store lookup of a token the cache could not answer: the request to pass on, or
/// the refusal to send.
pub(crate) type Check<R> = Pin<Box<dyn Future<Output = Result<R, Response<Bytes>>> + Send>>;

pin_project! {
    /// Response future of [`TokenAuth`](crate::TokenAuth): waits for the token's store
    /// lookup when the cache could not answer, then calls the inner service or answers
    /// with the refusal.
    pub struct ResponseFuture<S, R>
    where
        S: Service<R>,
    {
        #[pin]
        state: State<S::Future, R>,
        // Held only while the lookup runs: the service that was polled ready.
        inner: Option<S>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, R> {
        Checking { check: Check<R> },
        Calling { #[pin] future: F },
        Refused { response: Option<Response<Bytes>> },
    }
}

impl<S, R> ResponseFuture<S, R>
where
    S: Service<R>,
{
    pub(crate) fn check(check: Check<R>, inner: S) -> Self {
        Self {
            state: State::Checking { check },
            inner: Some(inner),
        }
    }

    pub(crate) fn call(future: S::Future) -> Self {
        Self {
            state: State::Calling { future },
            inner: None,
        }
    }

    pub(crate) fn refused(response: Response<Bytes>) -> Self {
        Self {
            state: State::Refused {
                response: Some(response),
            },
            inner: None,
        }
    }
}

impl<S, R, B> Future for ResponseFuture<S, R>
where
    S: Service<R, Response = Response<B>>,
{
    type Output = Result<Response<ResponseBody<B>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Checking { check } => {
                    let next = match ready!(check.as_mut().poll(cx)) {
                        Ok(request) => match this.inner.take() {
                            Some(mut inner) => State::Calling {
                                future: inner.call(request),
                            },
                            // Polled again after completion: nothing left to call.
                            None => State::Refused { response: None },
                        },
                        Err(response) => State::Refused {
                            response: Some(response),
                        },
                    };
                    this.state.set(next);
                }
                StateProj::Calling { future } => {
                    let response = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response.map(ResponseBody::inner)));
                }
                StateProj::Refused { response } => {
                    let response = response
                        .take()
                        .expect("ResponseFuture polled after completion");
                    return Poll::Ready(Ok(response.map(ResponseBody::refusal)));
                }
            }
        }
    }
}
