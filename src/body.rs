//! Bodies read with a limit, so that what a server sends never decides how
//! much memory a call takes. An error answer's body is read up to
//! [`ERROR_BODY_LIMIT`] — enough to classify it (a quota 429, a request too
//! large) and to quote the API's message — and the rest is dropped with the
//! connection; a success body up to whatever the caller says it can hold.
//! Every adapter and the examples read bodies through these functions.
//!
//! ```
//! use ai_retry::body::{self, Capped};
//! use http_body_util::Full;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let page = Full::new(bytes::Bytes::from(vec![b'x'; 100_000]));
//! let read: Capped = body::read_capped(page, body::ERROR_BODY_LIMIT).await.unwrap();
//! assert_eq!(read.bytes.len(), 64 * 1024);
//! assert!(read.cut);
//! # }
//! ```

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::BodyExt;

/// How much of an error answer's body is read: 64 KiB.
pub const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// A body read up to a limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capped {
    /// What was read: at most the limit.
    pub bytes: Bytes,
    /// The body went on past the limit; the rest was not read.
    pub cut: bool,
}

/// Reads `body` up to `limit` bytes. Past the limit nothing more is read: the
/// body is dropped, and with it the connection, however much the server still
/// had to send.
pub async fn read_capped<B>(body: B, limit: usize) -> Result<Capped, B::Error>
where
    B: http_body::Body,
{
    let mut body = std::pin::pin!(body);
    let mut read = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(mut data) = frame?.into_data() else {
            continue;
        };
        let room = limit - read.len();
        if data.remaining() > room {
            read.extend_from_slice(&data.copy_to_bytes(room));
            return Ok(Capped {
                bytes: read.freeze(),
                cut: true,
            });
        }
        while data.has_remaining() {
            let chunk = data.chunk();
            read.extend_from_slice(chunk);
            let n = chunk.len();
            data.advance(n);
        }
    }
    Ok(Capped {
        bytes: read.freeze(),
        cut: false,
    })
}

/// [`read_capped`] on a `reqwest::Response`'s body (feature `reqwest`).
#[cfg(feature = "reqwest")]
pub async fn read_response(
    response: ::reqwest::Response,
    limit: usize,
) -> Result<Capped, ::reqwest::Error> {
    let body = ::http::Response::<::reqwest::Body>::from(response).into_body();
    read_capped(body, limit).await
}

/// [`read_response`] for a blocking response (feature `reqwest-blocking`):
/// reading stops at the limit and the rest is dropped with the connection.
#[cfg(feature = "reqwest-blocking")]
pub fn read_blocking(
    mut response: ::reqwest::blocking::Response,
    limit: usize,
) -> Result<Capped, ::reqwest::Error> {
    let mut sink = Sink {
        read: Vec::new(),
        limit,
        cut: false,
    };
    match response.copy_to(&mut sink) {
        Ok(_) => {}
        // The sink refused what came past the limit: the read is over.
        Err(_) if sink.cut => {}
        Err(error) => return Err(error),
    }
    Ok(Capped {
        bytes: Bytes::from(sink.read),
        cut: sink.cut,
    })
}

/// Takes bytes up to `limit`, then refuses, which ends reqwest's copy.
#[cfg(feature = "reqwest-blocking")]
struct Sink {
    read: Vec<u8>,
    limit: usize,
    cut: bool,
}

#[cfg(feature = "reqwest-blocking")]
impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.limit - self.read.len();
        if buf.len() > room {
            self.read.extend_from_slice(&buf[..room]);
            self.cut = true;
            return Err(std::io::Error::other("the body is past its limit"));
        }
        self.read.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `bytes` as people write sizes: `64 KiB`, `16 MiB`, `1.5 GiB`, `300 bytes`.
///
/// ```
/// assert_eq!(ai_retry::body::size(64 * 1024), "64 KiB");
/// assert_eq!(ai_retry::body::size(16 << 20), "16 MiB");
/// ```
pub fn size(bytes: usize) -> String {
    const UNITS: [&str; 4] = ["bytes", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    match value.fract() == 0.0 {
        true => format!("{value:.0} {}", UNITS[unit]),
        false => format!("{value:.1} {}", UNITS[unit]),
    }
}

/// Parses a size as a user writes it: `16MiB`, `16 MiB`, `64KiB`, `1GiB`,
/// `500KB` (powers of ten), or plain bytes. For command lines and variables.
///
/// ```
/// assert_eq!(ai_retry::body::parse_size("16MiB"), Ok(16 << 20));
/// assert_eq!(ai_retry::body::parse_size("4096"), Ok(4096));
/// assert!(ai_retry::body::parse_size("lots").is_err());
/// ```
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" | "bytes" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "`{text}` is not a size (such as 16MiB, 64KiB, 4096)"
            ));
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size (such as 16MiB, 64KiB, 4096)"))?;
    let bytes = value * scale;
    match bytes.is_finite() && bytes >= 1.0 && bytes <= usize::MAX as f64 {
        true => Ok(bytes as usize),
        false => Err(format!("`{text}` is not a size of at least one byte")),
    }
}
