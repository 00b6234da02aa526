//! The `ImageModel` port: generate, edit, moderate and describe images. Implemented by OpenAI over
//! HTTP and by the offline procedural model.

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::catalog::RenderParams;
use crate::image_params::{ModerationLevel, OutputFormat};

/// An encoded input image (an upload or a stored image).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputImage {
    pub bytes: Vec<u8>,
    pub format: OutputFormat,
}

/// Continue a conversation: refine the previous turn's image.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Refinement {
    /// The model provider's id of the previous turn (OpenAI's Responses `previous_response_id`).
    pub previous_response_id: Option<String>,
    /// The previous turn's image, sent when there is no response id to continue from.
    pub previous_image: Option<InputImage>,
    /// The previous turn's prompt (the offline model folds it into the new render).
    pub previous_prompt: Option<String>,
}

/// One render request (the app fans `n` variations out as parallel requests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenerateRequest {
    /// The model id (already checked against the catalog).
    pub model: String,
    /// The full prompt, style phrase included.
    pub prompt: String,
    pub params: RenderParams,
    pub moderation: ModerationLevel,
    /// Distinguishes variations; the offline model's output is a pure function of prompt and seed.
    pub seed: u64,
    /// A stable, hashed end-user id (OpenAI's `safety_identifier`).
    pub safety_identifier: Option<String>,
    pub refine: Option<Refinement>,
}

/// An edit of one or more images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EditRequest {
    pub model: String,
    pub prompt: String,
    /// 1 to 16 images; the mask applies to the first.
    pub images: Vec<InputImage>,
    /// A PNG of the first image's dimensions whose transparent pixels mark where to edit.
    pub mask: Option<Vec<u8>>,
    pub params: RenderParams,
    pub seed: u64,
    pub safety_identifier: Option<String>,
}

/// Token usage of one model call, as the provider reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub input_text_tokens: u64,
    pub input_image_tokens: u64,
    pub output_image_tokens: u64,
    pub output_text_tokens: u64,
    pub total_tokens: u64,
}

impl Usage {
    pub fn add(&mut self, other: &Usage) {
        self.input_text_tokens += other.input_text_tokens;
        self.input_image_tokens += other.input_image_tokens;
        self.output_image_tokens += other.output_image_tokens;
        self.output_text_tokens += other.output_text_tokens;
        self.total_tokens += other.total_tokens;
    }

    /// The cost in micro-dollars at the model's rates.
    pub fn cost_micros(&self, rates: &crate::catalog::TokenRates) -> u64 {
        use crate::catalog::micros;
        micros(self.input_text_tokens, rates.text_in)
            + micros(self.input_image_tokens, rates.image_in)
            + micros(self.output_image_tokens, rates.image_out)
    }
}

/// One rendered image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedImage {
    pub bytes: Vec<u8>,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
    pub revised_prompt: Option<String>,
}

/// The result of a generate or edit call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub image: RenderedImage,
    /// The model that answered, as the provider names it (`offline` for the offline model).
    pub model: String,
    pub usage: Usage,
    /// The provider's id for continuing the conversation, when it has one.
    pub response_id: Option<String>,
}

/// A moderation verdict.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Moderation {
    pub flagged: bool,
    pub categories: Vec<String>,
}

#[async_trait::async_trait]
pub trait ImageModel: crate::MaybeSendSync {
    /// The model id used when a request names none.
    fn default_model(&self) -> &str;
    async fn generate(&self, req: GenerateRequest) -> Result<Rendered>;
    async fn edit(&self, req: EditRequest) -> Result<Rendered>;
    async fn moderate(&self, text: &str) -> Result<Moderation>;
    /// Alt text for an image: one or two plain sentences.
    async fn describe(&self, image: &InputImage) -> Result<String>;
    /// An embedding of a prompt, for the semantic cache. The default is the deterministic local
    /// embedding (the offline model uses it); OpenAI's adapter asks `text-embedding-3-small`.
    async fn embed(&self, text: &str) -> Result<crate::embed::Embedding> {
        Ok(crate::embed::Embedding::local(text))
    }
}
