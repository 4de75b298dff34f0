//! Serves the Admin UI's files (the npm package's `ui/dist`).

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Full;

/// A tower service that serves the Admin UI's files from a directory (the
/// npm package `@socket.io/admin-ui`'s `ui/dist`), mounted at a path
/// (default `/admin`): the mount path redirects to itself with a slash,
/// which serves `index.html`; the other files are served with their content
/// types. The stylesheets `index.html` would load from CDNs (fonts, icons)
/// are left out, so that nothing is fetched from elsewhere.
///
/// It takes the full request path, so mount it on the path and everything
/// under it, e.g. with axum:
///
/// ```no_run
/// # fn f(io: socketio_tokio::SocketIo) {
/// let ui = socketio_admin::UiService::new("node_modules/@socket.io/admin-ui/ui/dist");
/// let app = axum::Router::<()>::new()
///     .route_service("/admin", ui.clone())
///     .route_service("/admin/", ui.clone())
///     .route_service("/admin/{*file}", ui)
///     .fallback_service(io.service());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct UiService {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    mount: String,
    icons: Option<PathBuf>,
}

impl UiService {
    /// Serves the files of `dir` under `/admin`.
    pub fn new(dir: impl Into<PathBuf>) -> UiService {
        UiService {
            inner: Arc::new(Inner {
                dir: dir.into(),
                mount: "/admin".to_owned(),
                icons: None,
            }),
        }
    }

    /// Serves them under `mount` (a path such as `/admin`, with no trailing slash).
    pub fn mounted_at(self, mount: impl Into<String>) -> UiService {
        let mut mount: String = mount.into();
        while mount.ends_with('/') {
            mount.pop();
        }
        UiService {
            inner: Arc::new(Inner {
                dir: self.inner.dir.clone(),
                mount,
                icons: self.inner.icons.clone(),
            }),
        }
    }

    /// Serves the icon font that `index.html` loads from a CDN from `dir`
    /// instead (the npm package `@mdi/font`, with its `css` and `fonts`),
    /// under `<mount>/mdi/`; without it the UI's buttons show no icons.
    pub fn with_icons(self, dir: impl Into<PathBuf>) -> UiService {
        UiService {
            inner: Arc::new(Inner {
                dir: self.inner.dir.clone(),
                mount: self.inner.mount.clone(),
                icons: Some(dir.into()),
            }),
        }
    }

    /// Whether the directory holds the UI (its `index.html`).
    pub fn is_installed(&self) -> bool {
        self.inner.dir.join("index.html").is_file()
    }

    fn respond(&self, path: &str) -> Response<Full<Bytes>> {
        let mount = self.inner.mount.as_str();
        let Some(rest) = path.strip_prefix(mount) else {
            return status(StatusCode::NOT_FOUND);
        };
        if rest.is_empty() {
            let mut res = status(StatusCode::PERMANENT_REDIRECT);
            if let Ok(v) = HeaderValue::from_str(&format!("{mount}/")) {
                res.headers_mut().insert(header::LOCATION, v);
            }
            return res;
        }
        let Some(file) = rest.strip_prefix('/') else {
            return status(StatusCode::NOT_FOUND);
        };
        let file = if file.is_empty() { "index.html" } else { file };
        if !safe(file) {
            return status(StatusCode::NOT_FOUND);
        }
        let full = match (file.strip_prefix(ICONS), &self.inner.icons) {
            (Some(icon_file), Some(icons)) => icons.join(icon_file),
            _ => self.inner.dir.join(file),
        };
        let Ok(bytes) = std::fs::read(&full) else {
            return status(StatusCode::NOT_FOUND);
        };
        let body = match file == "index.html" {
            true => {
                let html = String::from_utf8_lossy(&bytes);
                let icons = self.inner.icons.is_some().then_some(ICONS_CSS);
                Bytes::from(strip_remote_stylesheets(&html, icons))
            }
            false => Bytes::from(bytes),
        };
        let mut res = Response::new(Full::new(body));
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(&full)),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        res
    }
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = code;
    res
}

/// A relative path of plain names: no `..`, no absolute path, no escapes.
fn safe(file: &str) -> bool {
    !file.contains(['\\', '%', '\0'])
        && file
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// The content type of a file of the UI.
fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
    {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Where the icon font is served, under the mount path.
const ICONS: &str = "mdi/";
/// Its stylesheet, relative to `index.html`.
const ICONS_CSS: &str = "mdi/css/materialdesignicons.min.css";

/// `index.html` without the `<link>` tags that load from another origin;
/// the icon font's stylesheet from `icons` when given.
fn strip_remote_stylesheets(html: &str, icons: Option<&str>) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find("<link") {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail.find('>').map_or(tail.len(), |e| e + 1);
        let tag = &tail[..end];
        if let Some(css) = icons
            && tag.contains("materialdesignicons")
        {
            out.push_str(&format!(r#"<link rel="stylesheet" href="{css}">"#));
        } else if !(tag.contains("href=\"https://")
            || tag.contains("href=\"http://")
            || tag.contains("href=\"//"))
        {
            out.push_str(tag);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

impl<B> tower_service::Service<Request<B>> for UiService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let res = match *req.method() {
            http::Method::GET | http::Method::HEAD => self.respond(req.uri().path()),
            _ => status(StatusCode::METHOD_NOT_ALLOWED),
        };
        ready(Ok(res))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn files_are_served_under_the_mount_path_with_their_types() {
        let dir = std::env::temp_dir().join(format!("socketio-admin-ui-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("js")).unwrap();
        std::fs::write(
            dir.join("index.html"),
            r#"<link href="https://cdn.example/x.css" rel="stylesheet"><link href="css/a.css" rel="stylesheet">"#,
        )
        .unwrap();
        std::fs::write(dir.join("js/app.js"), "run()").unwrap();
        let ui = UiService::new(&dir).mounted_at("/admin/");
        assert!(ui.is_installed());

        let res = ui.respond("/admin");
        assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(res.headers()[header::LOCATION], "/admin/");

        let res = ui.respond("/admin/");
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let body = res.into_body();
        let body = body_text(body);
        assert_eq!(body, r#"<link href="css/a.css" rel="stylesheet">"#);

        let res = ui.respond("/admin/js/app.js");
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert_eq!(body_text(res.into_body()), "run()");

        assert_eq!(
            ui.respond("/admin/js/none.js").status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            ui.respond("/admin/../Cargo.toml").status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            ui.respond("/other/js/app.js").status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(ui.respond("/administrator").status(), StatusCode::NOT_FOUND);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_icon_font_is_served_from_its_own_directory() {
        let base =
            std::env::temp_dir().join(format!("socketio-admin-icons-{}", std::process::id()));
        let (dir, icons) = (base.join("ui"), base.join("mdi"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(icons.join("css")).unwrap();
        std::fs::write(
            dir.join("index.html"),
            r#"<link rel="stylesheet" href="https://cdn.example/npm/@mdi/font@latest/css/materialdesignicons.min.css">"#,
        )
        .unwrap();
        std::fs::write(icons.join("css/materialdesignicons.min.css"), ".mdi{}").unwrap();
        let ui = UiService::new(&dir).with_icons(&icons);
        assert_eq!(
            body_text(ui.respond("/admin/").into_body()),
            r#"<link rel="stylesheet" href="mdi/css/materialdesignicons.min.css">"#
        );
        let res = ui.respond("/admin/mdi/css/materialdesignicons.min.css");
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "text/css; charset=utf-8"
        );
        assert_eq!(body_text(res.into_body()), ".mdi{}");
        let _ = std::fs::remove_dir_all(&base);
    }

    /// The whole body of a served file, as text.
    fn body_text(body: Full<Bytes>) -> String {
        use http_body_util::BodyExt;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = rt.block_on(body.collect()).unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn paths_that_leave_the_directory_are_refused() {
        assert!(safe("js/app.js"));
        assert!(!safe("../secret"));
        assert!(!safe("js/../../x"));
        assert!(!safe("/etc/passwd"));
        assert!(!safe("js/%2e%2e/x"));
    }

    #[test]
    fn remote_stylesheets_are_left_out() {
        let html = r#"<head><link rel="icon" href="favicon.png"><link rel="stylesheet" href="https://fonts.example/css"><link href="css/app.css" rel="stylesheet"></head>"#;
        assert_eq!(
            strip_remote_stylesheets(html, None),
            r#"<head><link rel="icon" href="favicon.png"><link href="css/app.css" rel="stylesheet"></head>"#
        );
    }
}
