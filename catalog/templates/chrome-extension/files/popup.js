// The popup: runs each time the toolbar button is clicked.

const $ = (id) => document.getElementById(id);

function say(text) {
  $('message').textContent = text;
}

async function activeTab() {
  const [tab] = await chrome.tabs.query({ active: true, currentWindow: true });
  return tab;
}

// Injects content.js into the tab (allowed by activeTab once the user has
// clicked the extension) and sends it a message.
async function ask(tab, message) {
  await chrome.scripting.executeScript({ target: { tabId: tab.id }, files: ['content.js'] });
  return chrome.tabs.sendMessage(tab.id, message);
}

async function main() {
  const tab = await activeTab();
  const { lastTerm = '' } = await chrome.storage.sync.get('lastTerm');
  $('term').value = lastTerm;

  try {
    const stats = await ask(tab, { type: 'analyze' });
    $('words').textContent = stats.words.toLocaleString();
    $('minutes').textContent = String(stats.readingMinutes);
  } catch {
    // chrome://, the Web Store and some other pages cannot be scripted.
    say('This page cannot be read by extensions.');
    for (const el of document.querySelectorAll('input, button')) el.disabled = true;
    return;
  }

  $('highlight-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const term = $('term').value.trim();
    if (!term) return;
    await chrome.storage.sync.set({ lastTerm: term });
    const { count } = await ask(tab, { type: 'highlight', term });
    say(count === 0 ? `No match for “${term}”.` : `${count} match${count === 1 ? '' : 'es'} highlighted.`);
  });

  $('clear').addEventListener('click', async () => {
    await ask(tab, { type: 'clear' });
    say('Highlights cleared.');
  });
}

main();
