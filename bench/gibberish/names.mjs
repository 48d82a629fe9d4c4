// Prints every first and last name of every locale of @faker-js/faker, one per line:
// `locale<TAB>first|last<TAB>name`. Run from a directory whose node_modules holds
// @faker-js/faker (run.sh installs it in a temporary directory and copies this script there).
import { allLocales } from '@faker-js/faker';

function names(value) {
  // Faker keeps names either as a list or as lists by sex (`{ female, male, generic }`).
  if (Array.isArray(value)) return value.filter((v) => typeof v === 'string');
  if (value && typeof value === 'object') return Object.values(value).flatMap(names);
  return [];
}

const seen = new Set();
for (const [locale, definitions] of Object.entries(allLocales)) {
  const person = definitions.person ?? {};
  for (const [kind, key] of [['first', 'first_name'], ['last', 'last_name']]) {
    for (const name of names(person[key])) {
      const line = `${locale}\t${kind}\t${name.trim()}`;
      if (name.trim() && !seen.has(line)) {
        seen.add(line);
        console.log(line);
      }
    }
  }
}
