// The service worker: event-driven, started by Chrome when an event arrives
// and stopped when idle. Keep no state in variables; use chrome.storage.

const MENU_ID = 'highlight-selection';

chrome.runtime.onInstalled.addListener(() => {
  chrome.contextMenus.create({
    id: MENU_ID,
    title: 'Highlight “%s” on this page',
    contexts: ['selection'],
  });
});

// Right-click > Highlight: the click grants activeTab for this tab.
chrome.contextMenus.onClicked.addListener(async (info, tab) => {
  if (info.menuItemId !== MENU_ID || !tab?.id || !info.selectionText) return;
  const term = info.selectionText.trim().slice(0, 100);
  await chrome.storage.sync.set({ lastTerm: term });
  await chrome.scripting.executeScript({ target: { tabId: tab.id }, files: ['content.js'] });
  await chrome.tabs.sendMessage(tab.id, { type: 'highlight', term });
});

// The content script reports how many matches it highlighted: show it on
// the toolbar button of that tab.
chrome.runtime.onMessage.addListener((message, sender) => {
  if (message?.type === 'highlighted' && sender.tab?.id) {
    chrome.action.setBadgeBackgroundColor({ tabId: sender.tab.id, color: '#1a73e8' });
    chrome.action.setBadgeText({
      tabId: sender.tab.id,
      text: message.count > 0 ? String(Math.min(message.count, 999)) : '',
    });
  }
});
