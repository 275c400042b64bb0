// Every slash command of the bot. To add one, create a module exporting
// `data` (a SlashCommandBuilder) and `execute(interaction)`, import it here,
// then run `npm run deploy-commands`.
import * as ping from './ping.js';
import * as roll from './roll.js';

export const commands = [ping, roll];
