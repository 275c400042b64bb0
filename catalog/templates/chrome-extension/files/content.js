// Content script: injected into the page on demand (see popup.js and
// background.js). It runs in an isolated world: it sees the page's DOM but
// not its JavaScript. Injection can happen several times per page, so the
// listener is installed only once.

if (!globalThis.__contentScriptLoaded) {
  globalThis.__contentScriptLoaded = true;

  const MARK_CLASS = 'ext-highlight-mark';
  const SKIP = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEXTAREA', 'INPUT', 'SELECT', 'MARK']);
  const WORDS_PER_MINUTE = 230;

  function analyze() {
    const text = document.body?.innerText ?? '';
    const words = (text.match(/[\p{L}\p{N}'’-]+/gu) ?? []).length;
    return { words, readingMinutes: Math.max(1, Math.round(words / WORDS_PER_MINUTE)) };
  }

  // Tells the service worker the match count, for the toolbar badge.
  function report(count) {
    chrome.runtime.sendMessage({ type: 'highlighted', count }).catch(() => {});
  }

  function clear() {
    for (const mark of document.querySelectorAll(`mark.${MARK_CLASS}`)) {
      const parent = mark.parentNode;
      parent.replaceChild(document.createTextNode(mark.textContent), mark);
      parent.normalize();
    }
  }

  function textNodes() {
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
      acceptNode(node) {
        const parent = node.parentElement;
        if (!parent || SKIP.has(parent.tagName) || parent.isContentEditable) return NodeFilter.FILTER_REJECT;
        return node.nodeValue.trim() ? NodeFilter.FILTER_ACCEPT : NodeFilter.FILTER_REJECT;
      },
    });
    const nodes = [];
    while (walker.nextNode()) nodes.push(walker.currentNode);
    return nodes;
  }

  function highlight(term) {
    clear();
    const escaped = term.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const pattern = new RegExp(escaped, 'gi');
    let count = 0;
    for (const node of textNodes()) {
      const text = node.nodeValue;
      pattern.lastIndex = 0;
      if (!pattern.test(text)) continue;
      pattern.lastIndex = 0;
      const fragment = document.createDocumentFragment();
      let last = 0;
      for (const match of text.matchAll(pattern)) {
        fragment.append(text.slice(last, match.index));
        const mark = document.createElement('mark');
        mark.className = MARK_CLASS;
        mark.textContent = match[0];
        fragment.append(mark);
        last = match.index + match[0].length;
        count += 1;
      }
      fragment.append(text.slice(last));
      node.parentNode.replaceChild(fragment, node);
    }
    document.querySelector(`mark.${MARK_CLASS}`)?.scrollIntoView({ behavior: 'smooth', block: 'center' });
    report(count);
    return count;
  }

  chrome.runtime.onMessage.addListener((message, _sender, sendResponse) => {
    switch (message?.type) {
      case 'analyze':
        sendResponse(analyze());
        break;
      case 'highlight':
        sendResponse({ count: highlight(String(message.term)) });
        break;
      case 'clear':
        clear();
        report(0);
        sendResponse({ ok: true });
        break;
      default:
        break;
    }
  });
}
