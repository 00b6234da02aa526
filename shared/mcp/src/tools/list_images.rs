//! `openai_list_images`: the stored images, newest first, a page at a time; in text each image's
//! id, size and short prompt, then the cursor of the next page.

use futures::future::BoxFuture;
use imagemcp_core::Error;
use imagemcp_core::rbac::Action;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::render::{resource_link, structured, urls};
use super::schema::{input, output};
use super::{Call, READ, TaskRule, Tool};
use crate::images::params::{ListArgs, parse_args};
use crate::images::record::ImageRecord;
use crate::views::{ImageListView, ImageView};

pub(super) const TOOL: Tool = Tool {
    name: "openai_list_images",
    actions: &[Action::ViewImages],
    title: "List images",
    description: "List stored images, newest first, a page at a time.",
    input: input::<ListArgs>,
    output: output::<ImageListView>,
    hints: READ,
    long_running: false,
    cost: None,
    task: TaskRule::Never,
    reveals: None,
    run,
};

fn run(call: Call<'_>, args: Value) -> BoxFuture<'_, Result<CallToolResult, Error>> {
    Box::pin(async move {
        let args = parse_args::<ListArgs>(args)?;
        let (records, next) = call.app.images().list(call.caller, &args).await?;
        let urls = urls(call.app, &records).await?;
        let view = ImageListView {
            images: records
                .iter()
                .zip(urls)
                .map(|(r, u)| ImageView::new(r, u))
                .collect(),
            next_cursor: next,
        };
        let content = records.iter().map(resource_link).collect();
        let summary = list_text(&records, view.next_cursor.as_deref());
        structured(&view, content, summary)
    })
}

/// The most characters of a prompt a listing shows.
const SHORT_PROMPT_CHARS: usize = 60;

/// `text` on one line, cut to `max` characters (with an ellipsis when cut).
fn one_line(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", cut.trim_end())
}

/// A page of images for a person: each image's id, size and short prompt, then how to get the
/// next page, with the cursor itself.
fn list_text(records: &[ImageRecord], next_cursor: Option<&str>) -> String {
    let mut lines = vec![match records.len() {
        0 if next_cursor.is_none() => "No images.".to_owned(),
        n => format!("{n} image(s), newest first:"),
    }];
    for rec in records {
        lines.push(format!(
            "- {} ({}x{} {}): {}",
            rec.id,
            rec.width,
            rec.height,
            rec.format,
            one_line(&rec.prompt, SHORT_PROMPT_CHARS)
        ));
    }
    if let Some(cursor) = next_cursor {
        lines.push(format!(
            "More images: call again with cursor \"{cursor}\" for the next page."
        ));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_prompts_are_one_line_and_cut_with_an_ellipsis() {
        assert_eq!(one_line("a  red\nkite", 60), "a red kite");
        let long = "word ".repeat(30);
        let short = one_line(&long, 60);
        assert!(
            short.chars().count() <= 60 && short.ends_with('…'),
            "{short}"
        );
        assert!(long.starts_with(short.trim_end_matches('…')));
    }
}
