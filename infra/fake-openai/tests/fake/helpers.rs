//! Spawns the fake in-process on port 0 and wraps a reqwest client with an API key for its routes.

use fake_openai::{FakeConfig, FakeOpenAi};
use reqwest::multipart::{Form, Part};
use serde_json::Value;

pub(crate) struct TestFake {
    pub(crate) fake: FakeOpenAi,
    pub(crate) http: reqwest::Client,
}

pub(crate) async fn spawn(config: FakeConfig) -> TestFake {
    let fake = fake_openai::spawn(config).await.expect("fake starts");
    TestFake {
        fake,
        http: reqwest::Client::new(),
    }
}

impl TestFake {
    /// POSTs JSON to an OpenAI route (`/images/generations`) with a bearer key.
    pub(crate) async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.fake.base_url()))
            .bearer_auth("sk-test")
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    pub(crate) async fn post_form(&self, path: &str, form: Form) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.fake.base_url()))
            .bearer_auth("sk-test")
            .multipart(form)
            .send()
            .await
            .expect("request sent")
    }

    /// Calls the control API (`faults`, `reset`, `requests`).
    pub(crate) async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .request(method, format!("{}/_fake/{path}", self.fake.url()));
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request sent")
    }
}

/// The `error` object of an error answer, checking the envelope has all four keys.
pub(crate) async fn error_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("JSON error body");
    let error = body["error"].clone();
    for key in ["message", "type", "param", "code"] {
        assert!(error.get(key).is_some(), "envelope lacks {key}: {body}");
    }
    (status, error)
}

pub(crate) fn png(width: u32, height: u32, alpha: bool) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(width, height, |x, _| {
        image::Rgba([(x % 256) as u8, 0, 0, if alpha { 0 } else { 255 }])
    });
    let dynamic = if alpha {
        image::DynamicImage::ImageRgba8(img)
    } else {
        image::DynamicImage::ImageRgb8(image::DynamicImage::ImageRgba8(img).to_rgb8())
    };
    let mut bytes = Vec::new();
    dynamic
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    bytes
}

pub(crate) fn image_part(bytes: Vec<u8>, name: &str) -> Part {
    Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str("image/png")
        .unwrap()
}

pub(crate) fn edit_form(model: &str, images: usize, mask: Option<Vec<u8>>) -> Form {
    let mut form = Form::new()
        .text("model", model.to_owned())
        .text("prompt", "add a hat");
    for i in 0..images {
        form = form.part(
            "image[]",
            image_part(png(64, 64, false), &format!("i{i}.png")),
        );
    }
    if let Some(mask) = mask {
        form = form.part("mask", image_part(mask, "mask.png"));
    }
    form
}
