//! Behaviour tests of the offline model through its `ImageModel` port.

use super::*;
use imagemcp_core::image_params::{ModerationLevel, OutputFormat};

const SMALL: ImageSize = ImageSize::Fixed {
    width: 256,
    height: 256,
};

fn params(size: ImageSize, format: OutputFormat, background: Background) -> RenderParams {
    RenderParams {
        size,
        quality: Quality::Medium,
        background,
        format,
        compression: None,
    }
}

fn request(prompt: &str, seed: u64) -> GenerateRequest {
    GenerateRequest {
        model: OFFLINE_MODEL.to_owned(),
        prompt: prompt.to_owned(),
        params: params(SMALL, OutputFormat::Png, Background::Auto),
        moderation: ModerationLevel::Auto,
        seed,
        safety_identifier: None,
        refine: None,
    }
}

async fn generate_bytes(req: GenerateRequest) -> Vec<u8> {
    OfflineModel::new().generate(req).await.unwrap().image.bytes
}

fn decode(bytes: &[u8]) -> RgbaImage {
    image::load_from_memory(bytes).unwrap().to_rgba8()
}

/// The mean colour of the opaque pixels.
fn mean(img: &RgbaImage) -> [u32; 3] {
    let (mut sum, mut n) = ([0u64; 3], 0u64);
    for p in img.pixels().filter(|p| p.0[3] == 255) {
        (0..3).for_each(|i| sum[i] += u64::from(p.0[i]));
        n += 1;
    }
    sum.map(|s| (s / n.max(1)) as u32)
}

/// How many pixels are clearly red (red well above green and blue) and clearly blue.
fn red_and_blue(img: &RgbaImage) -> (usize, usize) {
    let clearly = |a: u8, b: u8, c: u8| u32::from(a) > u32::from(b.max(c)) + 40;
    let red = img
        .pixels()
        .filter(|p| clearly(p.0[0], p.0[1], p.0[2]))
        .count();
    let blue = img
        .pixels()
        .filter(|p| clearly(p.0[2], p.0[0], p.0[1]))
        .count();
    (red, blue)
}

fn assert_invalid(err: Error, expect: &str) -> String {
    match err {
        Error::Invalid { field, reason } => {
            assert_eq!(field, expect, "{reason}");
            reason
        }
        other => panic!("expected Invalid {expect}, got {other}"),
    }
}

#[tokio::test]
async fn same_input_same_bytes_and_the_seed_varies_them() {
    let a = generate_bytes(request("a red logo on a blue background", 1)).await;
    let b = generate_bytes(request("A  red LOGO\non a blue background", 1)).await;
    assert_eq!(a, b, "the normalised prompt decides");
    assert_ne!(
        a,
        generate_bytes(request("a red logo on a blue background", 2)).await
    );
    assert_ne!(
        a,
        generate_bytes(request("a red star on a blue background", 1)).await
    );
    // Pinned pixels (not file bytes, which belong to the encoder crate): if this fails, every
    // offline image users have already seen would come out differently.
    let pixels = rng::hash64(&[decode(&a).as_raw()]);
    assert_eq!(pixels, 0xfe2b_92de_7dca_912f);
}

#[tokio::test]
async fn output_has_the_requested_size_and_format() {
    let size = ImageSize::Fixed {
        width: 320,
        height: 192,
    };
    for format in OutputFormat::ALL {
        let mut req = request("mountains at dawn", 5);
        req.params = params(size, *format, Background::Opaque);
        req.params.compression = (*format == OutputFormat::Jpeg).then_some(70);
        let out = OfflineModel::new().generate(req).await.unwrap();
        assert_eq!(OutputFormat::sniff(&out.image.bytes), Some(*format));
        assert_eq!(
            (out.image.width, out.image.height, out.image.format),
            (320, 192, *format)
        );
        assert_eq!(decode(&out.image.bytes).dimensions(), (320, 192));
        assert_eq!(out.model, "offline");
    }
    let jpeg = |q| {
        let mut req = request("mountains at dawn", 5);
        req.params = RenderParams {
            compression: Some(q),
            ..params(size, OutputFormat::Jpeg, Background::Opaque)
        };
        generate_bytes(req)
    };
    assert!(
        jpeg(20).await.len() < jpeg(95).await.len(),
        "compression is the JPEG quality"
    );
}

#[tokio::test]
async fn auto_size_is_1024_square_with_realistic_usage() {
    let mut req = request("a star", 0);
    req.params.size = ImageSize::Auto;
    req.params.quality = Quality::Low;
    let out = OfflineModel::new().generate(req).await.unwrap();
    assert_eq!((out.image.width, out.image.height), (1024, 1024));
    let spec = catalog::lookup(OFFLINE_MODEL).unwrap();
    let expect = spec.estimate_output_tokens(ImageSize::Auto, Quality::Low);
    assert!(expect > 0);
    assert_eq!(
        out.usage,
        Usage {
            output_image_tokens: expect,
            total_tokens: expect,
            ..Usage::default()
        }
    );
    assert_eq!(out.usage.cost_micros(&spec.rates), 0);
    assert!(out.response_id.unwrap().starts_with("offline_resp_"));
    assert_eq!(OfflineModel::new().default_model(), "offline");
}

#[tokio::test]
async fn transparent_backgrounds_have_real_alpha_and_opaque_ones_none() {
    for format in [OutputFormat::Png, OutputFormat::Webp] {
        let mut req = request("a heart", 3);
        req.params = params(SMALL, format, Background::Transparent);
        let img = decode(&generate_bytes(req).await);
        assert_eq!(
            img.get_pixel(0, 0).0[3],
            0,
            "{format}: the corner is transparent"
        );
        let solid = img.pixels().filter(|p| p.0[3] == 255).count();
        assert!(
            solid > 256 * 256 / 10,
            "{format}: the subject is opaque ({solid} px)"
        );
        let mut req = request("a heart", 3);
        req.params = params(SMALL, format, Background::Opaque);
        let img = image::load_from_memory(&generate_bytes(req).await).unwrap();
        assert!(
            img.to_rgba8().pixels().all(|p| p.0[3] == 255),
            "{format}: opaque"
        );
    }
    let mut req = request("a heart", 3);
    req.params = params(SMALL, OutputFormat::Jpeg, Background::Transparent);
    assert_invalid(
        OfflineModel::new().generate(req).await.unwrap_err(),
        "background",
    );
}

#[tokio::test]
async fn colour_words_dominate() {
    let red = mean(&decode(&generate_bytes(request("a red logo", 9)).await));
    let blue = mean(&decode(&generate_bytes(request("a blue logo", 9)).await));
    assert!(
        red[0] > red[2] + 40 && red[0] > red[1] + 40,
        "red logo mean {red:?}"
    );
    assert!(
        blue[2] > blue[0] + 40 && blue[2] > blue[1] + 20,
        "blue logo mean {blue:?}"
    );

    let img = decode(&generate_bytes(request("a red logo on a blue background", 9)).await);
    let (reds, blues) = red_and_blue(&img);
    assert!(
        blues > reds && reds > 256 * 256 / 20,
        "blue background {blues}, red subject {reds}"
    );
    assert!(
        red_and_blue(&image::imageops::crop_imm(&img, 120, 0, 16, 16).to_image()).1 > 200,
        "the top edge is background blue"
    );
}

#[tokio::test]
async fn a_refinement_keeps_the_layout_and_takes_the_new_colours() {
    let model = OfflineModel::new();
    let first = model
        .generate(request("a red logo on a blue background", 4))
        .await
        .unwrap();
    let id = first.response_id.clone();

    // Nothing new asked for, variation 0: the very same picture, from the id alone.
    let mut again = request("once more please", 0);
    again.refine = Some(Refinement {
        previous_response_id: id.clone(),
        ..Refinement::default()
    });
    assert_eq!(
        model.generate(again).await.unwrap().image.bytes,
        first.image.bytes
    );

    // A new colour: the background stays blue, the subject turns green.
    let mut green = request("make it green", 0);
    green.refine = Some(Refinement {
        previous_response_id: id,
        ..Refinement::default()
    });
    let img = decode(&model.generate(green).await.unwrap().image.bytes);
    let (reds, blues) = red_and_blue(&img);
    let greens = img
        .pixels()
        .filter(|p| u32::from(p.0[1]) > u32::from(p.0[0].max(p.0[2])) + 40)
        .count();
    assert!(
        blues > greens && greens > 256 * 256 / 20 && reds < 100,
        "blue {blues}, green {greens}, red {reds}"
    );

    // From the previous prompt instead of the id, with the same seed: the same layout again.
    let mut by_prompt = request("once more please", 4);
    by_prompt.refine = Some(Refinement {
        previous_prompt: Some("a red logo on a blue background".to_owned()),
        ..Refinement::default()
    });
    assert_eq!(
        model.generate(by_prompt).await.unwrap().image.bytes,
        first.image.bytes
    );

    // From the previous image alone: its dominant colour (blue) stays the background.
    let mut by_image = request("a star", 0);
    by_image.refine = Some(Refinement {
        previous_image: Some(InputImage {
            bytes: first.image.bytes,
            format: OutputFormat::Png,
        }),
        ..Refinement::default()
    });
    let (reds, blues) = red_and_blue(&decode(
        &model.generate(by_image).await.unwrap().image.bytes,
    ));
    assert!(
        blues > 256 * 256 / 2 && reds > 256 * 256 / 50,
        "blue {blues}, red {reds}"
    );
}

/// A 64x48 opaque grey gradient, as PNG.
fn photo() -> Vec<u8> {
    let img = RgbaImage::from_fn(64, 48, |x, y| {
        image::Rgba([(x * 4) as u8, (y * 5) as u8, 128, 255])
    });
    codec::encode(&img, OutputFormat::Png, None, false).unwrap()
}

fn edit_request(mask: Option<Vec<u8>>) -> EditRequest {
    EditRequest {
        model: OFFLINE_MODEL.to_owned(),
        prompt: "a yellow sun".to_owned(),
        images: vec![InputImage {
            bytes: photo(),
            format: OutputFormat::Png,
        }],
        mask,
        params: params(ImageSize::Auto, OutputFormat::Png, Background::Auto),
        seed: 0,
        safety_identifier: None,
    }
}

#[tokio::test]
async fn an_edit_with_a_mask_changes_only_the_masked_pixels() {
    let inside = |x: u32, y: u32| (10..30).contains(&x) && (8..28).contains(&y);
    let mask = RgbaImage::from_fn(64, 48, |x, y| {
        image::Rgba([0, 0, 0, if inside(x, y) { 0 } else { 255 }])
    });
    let mask = codec::encode(&mask, OutputFormat::Png, None, false).unwrap();
    let out = OfflineModel::new()
        .edit(edit_request(Some(mask)))
        .await
        .unwrap();
    assert_eq!(
        (out.image.width, out.image.height),
        (64, 48),
        "auto is the input's size"
    );
    let (before, after) = (decode(&photo()), decode(&out.image.bytes));
    let mut changed = 0;
    for (x, y, p) in after.enumerate_pixels() {
        if inside(x, y) {
            changed += usize::from(p != before.get_pixel(x, y));
        } else {
            assert_eq!(p, before.get_pixel(x, y), "({x}, {y}) is outside the mask");
        }
    }
    assert!(changed > 300, "only {changed} of 400 masked pixels changed");
}

#[tokio::test]
async fn an_edit_without_a_mask_recolours_and_resizes() {
    let mut req = edit_request(None);
    req.prompt = "make it red".to_owned();
    req.params.size = ImageSize::Fixed {
        width: 32,
        height: 32,
    };
    req.params.format = OutputFormat::Webp;
    let out = OfflineModel::new().edit(req).await.unwrap();
    let img = decode(&out.image.bytes);
    assert_eq!(
        (img.dimensions(), OutputFormat::sniff(&out.image.bytes)),
        ((32, 32), Some(OutputFormat::Webp))
    );
    let [r, g, b] = mean(&img);
    assert!(r > g + 30 && r > b + 30, "recoloured red: {:?}", [r, g, b]);
}

#[tokio::test]
async fn bad_edit_inputs_name_their_field() {
    let model = OfflineModel::new();
    let wrong = codec::encode(&RgbaImage::new(10, 10), OutputFormat::Png, None, false).unwrap();
    let reason = assert_invalid(
        model.edit(edit_request(Some(wrong))).await.unwrap_err(),
        "mask",
    );
    assert_eq!(reason, "must have the same dimensions as the image (64x48)");

    let jpeg_mask = codec::encode(&RgbaImage::new(64, 48), OutputFormat::Jpeg, None, true).unwrap();
    assert_invalid(
        model.edit(edit_request(Some(jpeg_mask))).await.unwrap_err(),
        "mask",
    );

    let mut garbage = edit_request(None);
    garbage.images[0].bytes = b"definitely not a png".to_vec();
    assert_invalid(model.edit(garbage).await.unwrap_err(), "image");

    let mut none = edit_request(None);
    none.images.clear();
    assert_invalid(model.edit(none).await.unwrap_err(), "image");

    let mut huge = request("a sun", 0);
    huge.params.size = ImageSize::Fixed {
        width: 5000,
        height: 5000,
    };
    assert_invalid(model.generate(huge).await.unwrap_err(), "size");
}

#[tokio::test]
async fn moderation_and_description_work_through_the_port() {
    let model = OfflineModel::new();
    let verdict = model.moderate("a gory scene").await.unwrap();
    assert!(verdict.flagged && verdict.categories.contains(&"violence/graphic".to_owned()));
    assert!(
        !model
            .moderate("shoot a photo of a killer app")
            .await
            .unwrap()
            .flagged
    );

    let mut req = request("a gold star on a navy background", 2);
    req.params.size = ImageSize::Fixed {
        width: 256,
        height: 384,
    };
    let bytes = generate_bytes(req).await;
    let alt = model
        .describe(&InputImage {
            bytes,
            format: OutputFormat::Png,
        })
        .await
        .unwrap();
    assert!(
        alt.starts_with("A 256×384 portrait image in mostly navy"),
        "{alt}"
    );
    assert!(!alt.contains("transparent"), "{alt}");

    let garbage = InputImage {
        bytes: vec![1, 2, 3],
        format: OutputFormat::Png,
    };
    assert_invalid(model.describe(&garbage).await.unwrap_err(), "image");
}

#[test]
fn oversized_inputs_fit_the_limits() {
    assert_eq!(fit(1024, 768), (1024, 768));
    let (w, h) = fit(4032, 3024);
    assert!(
        w <= codec::MAX_EDGE && u64::from(w) * u64::from(h) <= codec::MAX_PIXELS,
        "{w}x{h}"
    );
    assert_eq!(article("orange"), "an orange");
    assert_eq!(capitalised("a red"), "A red");
}
