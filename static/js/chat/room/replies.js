/*
 * Replies: a Reply action on each stored message puts it in the bar above the composer; the
 * next message sent quotes it (reply_to on message.send). A reply shows the quote above its body
 * as the server stored it (sender, the start of the text, or "Message deleted"); a click on it
 * goes to the quoted message (timeline.jumpTo: here if it is on the page, else the room opened at it).
 */
import { byId, part } from "../util.js";

const QUOTE_CHARS = 200; // as much as the server keeps

/** The quote of ``message`` as a pending reply shows it (the server's snapshot has this shape). */
export function quoteOf(message) {
  return { seq: message.seq, sender: message.sender, body: message.body.slice(0, QUOTE_CHARS), deleted: false };
}

/** Fill ``element`` (a quote's box) with ``quote``. */
export function drawQuote(element, quote) {
  element.replaceChildren();
  element.hidden = !quote;
  if (!quote) return;
  const who = document.createElement("span");
  who.className = "quote-sender";
  who.textContent = quote.sender.username;
  const text = document.createElement("span");
  text.className = "quote-body";
  text.textContent = quote.deleted ? "Message deleted" : quote.body;
  element.classList.toggle("quote-deleted", Boolean(quote.deleted));
  element.dataset.seq = quote.seq;
  element.append(who, text);
}

export function createReplies(view) {
  const { el } = view;
  const bar = byId("reply-bar");
  let replyingTo = null; // the quote of the message being replied to

  function show() {
    bar.hidden = !replyingTo;
    drawQuote(part(bar, "quote"), replyingTo);
  }

  return {
    /** The Reply button and the quote of a new message's element. */
    wire(entry) {
      const quote = part(entry.element, "quote");
      drawQuote(quote, entry.message.reply_to);
      quote.addEventListener("click", () => view.timeline.jumpTo(Number(quote.dataset.seq)));
      const reply = part(entry.element, "reply");
      reply.hidden = Boolean(entry.message.deleted);
      reply.addEventListener("click", () => this.start(entry.message));
    },

    /** The message ``seq`` was deleted: quotes of it on the page say so, and it cannot be replied to. */
    deleted(entry) {
      part(entry.element, "reply").hidden = true;
      if (replyingTo && replyingTo.seq === entry.message.seq) this.cancel();
      for (const quote of el.list.querySelectorAll(`[data-role=quote][data-seq="${entry.message.seq}"]`)) {
        drawQuote(quote, { seq: entry.message.seq, sender: entry.message.sender, body: "", deleted: true });
      }
    },

    /** The message was edited: quotes of it on the page read its new words, as the server now stores them. */
    edited(entry) {
      const message = entry.message;
      for (const quote of el.list.querySelectorAll(`[data-role=quote][data-seq="${message.seq}"]`)) {
        drawQuote(quote, { ...quoteOf(message), deleted: quote.classList.contains("quote-deleted") });
      }
    },

    start(message) {
      replyingTo = quoteOf(message);
      show();
      el.input.focus();
    },

    cancel() {
      replyingTo = null;
      show();
    },

    /** The quote the next message sends with (and forget it), or null. */
    take() {
      const quote = replyingTo;
      this.cancel();
      return quote;
    },

    attach() {
      part(bar, "cancel").addEventListener("click", () => {
        this.cancel();
        el.input.focus();
      });
      el.input.addEventListener("keydown", (event) => {
        if (event.key === "Escape" && replyingTo) {
          event.preventDefault();
          this.cancel();
        }
      });
    },
  };
}
