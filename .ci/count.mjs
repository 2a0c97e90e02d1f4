// Counts a vitest JSON report into one plain line: "N passed, N failed, N skipped".
//
// vitest marks the tests under a hook that throws (a file's or a describe's beforeAll) as
// "skipped", fails the file, and leaves numFailedTests at 0, so its own counts hide such a
// file. Here a test counts as passed only if it ran and passed; in a failed file every test
// that did not pass is failed; a failed file with no such test (an import or an afterAll
// that throws) is one failure of its own. Skips in passing files are listed by name, so a
// skip is never silent.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

/** @param {any} report vitest's `--reporter=json` output */
export function count(report) {
  const result = { passed: 0, failed: 0, skipped: 0, skippedTests: [], fileErrors: [] };
  for (const file of report.testResults ?? []) {
    const fileFailed = file.status === 'failed';
    let failedHere = 0;
    for (const test of file.assertionResults ?? []) {
      if (test.status === 'passed') result.passed++;
      else if (test.status === 'failed' || fileFailed) {
        result.failed++;
        failedHere++;
      } else {
        result.skipped++;
        result.skippedTests.push({ file: file.name, name: test.fullName ?? test.title });
      }
    }
    if (fileFailed && file.message) {
      result.fileErrors.push({ file: file.name, message: String(file.message).split('\n')[0] });
    }
    if (fileFailed && failedHere === 0) result.failed++;
  }
  return result;
}

export function summaryLine({ passed, failed, skipped }) {
  return `${passed} passed, ${failed} failed, ${skipped} skipped`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const report = JSON.parse(readFileSync(process.argv[2], 'utf8'));
  const result = count(report);
  const where = (file) => relative(process.cwd(), file);
  for (const { file, message } of result.fileErrors) console.log(`file error: ${where(file)}: ${message}`);
  for (const { file, name } of result.skippedTests) console.log(`skipped: ${where(file)} > ${name}`);
  console.log(summaryLine(result));
}
