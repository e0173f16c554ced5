//! [`ResponseFuture`]: the future of a [`TokenAuth`](crate::service::TokenAuth) call.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::Response;
use pin_project_lite::pin_project;
use tower::Service;

type Check<R> = Pin<Box<dyn Future<Output = Result<R, Response<Bytes>>> + Send>>;

pin_project! {
    /// Response future of [`TokenAuth`](crate::service::TokenAuth): checks the token, then
    /// either calls the inner service or answers with the refusal.
    pub struct ResponseFuture<S, R>
    where
        S: Service<R>,
    {
        #[pin]
        state: State<S, R>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, R>
    where
        S: Service<R>,
    {
        Checking { check: Check<R>, inner: Option<S> },
        Calling { #[pin] future: S::Future },
        Refused { response: Option<Response<Bytes>> },
    }
}

impl<S, R> ResponseFuture<S, R>
where
    S: Service<R>,
{
    pub(crate) fn check(
        check: impl Future<Output = Result<R, Response<Bytes>>> + Send + 'static,
        inner: S,
    ) -> Self {
        Self {
            state: State::Checking {
                check: Box::pin(check),
                inner: Some(inner),
            },
        }
    }

    pub(crate) fn call(future: S::Future) -> Self {
        Self {
            state: State::Calling { future },
        }
    }

    pub(crate) fn refused(response: Response<Bytes>) -> Self {
        Self {
            state: State::Refused {
                response: Some(response),
            },
        }
    }
}

impl<S, R, ResBody> Future for ResponseFuture<S, R>
where
    S: Service<R, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Checking { check, inner } => {
                    let outcome = ready!(check.as_mut().poll(cx));
                    let next = match (outcome, inner.take()) {
                        (Ok(request), Some(mut inner)) => State::Calling {
                            future: inner.call(request),
                        },
                        (Err(response), _) => State::Refused {
                            response: Some(response),
                        },
                        // Polled again after completion: nothing left to call.
                        (Ok(_), None) => State::Refused { response: None },
                    };
                    this.state.set(next);
                }
                StateProj::Calling { future } => return future.poll(cx),
                StateProj::Refused { response } => {
                    let response = response
                        .take()
                        .expect("ResponseFuture polled after completion");
                    return Poll::Ready(Ok(response.map(ResBody::from)));
                }
            }
        }
    }
}
