//! Spawns the fake OpenAI server in-process and an `OpenAiModel` pointed at it, with a sleeper that
//! records retry waits instead of sleeping, plus request builders and image fixtures.

use std::io::Cursor;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use fake_openai::{FakeConfig, FakeOpenAi, RecordedRequest};
use imagemcp_core::catalog::{self, RenderParams};
use imagemcp_core::image_params::{Background, ImageSize, ModerationLevel, OutputFormat, Quality};
use imagemcp_core::model::{EditRequest, GenerateRequest, InputImage};
use imagemcp_openai::{ApiKey, OpenAiConfig, OpenAiModel, RetryPolicy, Sleeper};

/// The key every test uses; no error or log line may ever contain it.
pub(crate) const KEY: &str = "sk-test-adapter-secret-0123456789";

/// Records each wait and returns at once, so retry tests are fast and can check the waits.
#[derive(Debug, Default)]
pub(crate) struct RecordingSleeper {
    waits: Mutex<Vec<Duration>>,
}

#[async_trait::async_trait]
impl Sleeper for RecordingSleeper {
    async fn sleep(&self, duration: Duration) {
        self.waits.lock().unwrap().push(duration);
    }
}

impl RecordingSleeper {
    pub(crate) fn waits(&self) -> Vec<Duration> {
        self.waits.lock().unwrap().clone()
    }
}

pub(crate) struct TestApp {
    pub(crate) fake: FakeOpenAi,
    pub(crate) model: OpenAiModel,
    pub(crate) sleeper: Arc<RecordingSleeper>,
}

impl TestApp {
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.fake.requests()
    }

    pub(crate) fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.fake.requests_to(path)
    }
}

/// The fake plus a model with the default retry policy (the sleeper makes it instant).
pub(crate) async fn spawn() -> TestApp {
    spawn_with(FakeConfig::local(), |_| {}).await
}

pub(crate) async fn spawn_with(
    fake_config: FakeConfig,
    adjust: impl FnOnce(&mut OpenAiConfig),
) -> TestApp {
    logs();
    let fake = fake_openai::spawn(fake_config)
        .await
        .expect("fake OpenAI starts");
    let mut config = OpenAiConfig::new(ApiKey::new(KEY).unwrap());
    config.base_url = fake.base_url();
    config.retry = RetryPolicy::DEFAULT;
    adjust(&mut config);
    let sleeper = Arc::new(RecordingSleeper::default());
    let model = OpenAiModel::new(config)
        .expect("valid config")
        .with_sleeper(sleeper.clone());
    TestApp {
        fake,
        model,
        sleeper,
    }
}

pub(crate) fn params(
    size: ImageSize,
    format: OutputFormat,
    background: Background,
) -> RenderParams {
    RenderParams {
        size,
        quality: Quality::Low,
        background,
        format,
        compression: None,
    }
}

pub(crate) fn fixed(width: u32, height: u32) -> ImageSize {
    ImageSize::Fixed { width, height }
}

pub(crate) fn generate(prompt: &str) -> GenerateRequest {
    GenerateRequest {
        model: catalog::DEFAULT_MODEL.to_owned(),
        prompt: prompt.to_owned(),
        params: params(ImageSize::Auto, OutputFormat::Png, Background::Auto),
        moderation: ModerationLevel::Auto,
        seed: 1,
        safety_identifier: None,
        refine: None,
    }
}

pub(crate) fn edit(prompt: &str, images: Vec<InputImage>, mask: Option<Vec<u8>>) -> EditRequest {
    EditRequest {
        model: catalog::DEFAULT_MODEL.to_owned(),
        prompt: prompt.to_owned(),
        images,
        mask,
        params: params(ImageSize::Auto, OutputFormat::Png, Background::Auto),
        seed: 1,
        safety_identifier: None,
    }
}

/// A PNG of the given size; with `alpha`, its left half is fully transparent (a mask).
pub(crate) fn png(width: u32, height: u32, alpha: bool) -> InputImage {
    let img = image::RgbaImage::from_fn(width, height, |x, y| {
        let a = if alpha && x < width / 2 { 0 } else { 255 };
        image::Rgba([(x % 256) as u8, (y % 256) as u8, 90, a])
    });
    let mut bytes = Vec::new();
    let dynamic = if alpha {
        image::DynamicImage::ImageRgba8(img)
    } else {
        image::DynamicImage::ImageRgb8(image::DynamicImage::ImageRgba8(img).to_rgb8())
    };
    dynamic
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
        .unwrap();
    InputImage {
        bytes,
        format: OutputFormat::Png,
    }
}

pub(crate) fn jpeg(width: u32, height: u32) -> InputImage {
    let img =
        image::RgbImage::from_fn(width, height, |x, _| image::Rgb([(x % 256) as u8, 40, 200]));
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Jpeg)
        .unwrap();
    InputImage {
        bytes,
        format: OutputFormat::Jpeg,
    }
}

/// Asserts the key appears in none of the texts.
pub(crate) fn assert_no_key(texts: &[String]) {
    for text in texts {
        assert!(!text.contains(KEY), "the API key leaked: {text}");
        assert!(
            !text.contains("0123456789"),
            "part of the API key leaked: {text}"
        );
    }
}

/// The log output of every test in this binary. One global subscriber, installed on first use:
/// tracing caches per-callsite interest globally, so per-test scoped subscribers miss events when
/// tests run in parallel.
pub(crate) fn logs() -> &'static LogCapture {
    static LOGS: OnceLock<LogCapture> = OnceLock::new();
    LOGS.get_or_init(|| {
        let capture = LogCapture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(capture.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
        capture
    })
}

/// Collects formatted log output in memory.
#[derive(Clone, Default)]
pub(crate) struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
