// Quota periods in the user's time zone (core/quota/periods.ts): the local day and month, and the exact instant
// each resets, including days of 23 and 25 hours, a midnight skipped by DST and a calendar day skipped entirely.
import t from 'tap';
import { createPeriodClock, isoSeconds, periodsAt, safeTimeZone } from '../../../src/core/quota/periods.js';

const at = (iso: string) => Date.parse(iso);
function show(iso: string, zone: string) {
  const p = periodsAt(at(iso), zone);
  return {
    day: p.daily.date,
    dayStarts: isoSeconds(p.daily.startsAt),
    dayResets: isoSeconds(p.daily.resetsAt),
    month: p.monthly.date,
    monthResets: isoSeconds(p.monthly.resetsAt),
  };
}

t.test('periodsAt gives the local day and month and when they reset', async (t) => {
  t.same(show('2026-11-25T20:00:00Z', 'UTC'), {
    day: '2026-11-25',
    dayStarts: '2026-11-25T00:00:00Z',
    dayResets: '2026-11-26T00:00:00Z',
    month: '2026-11-01',
    monthResets: '2026-12-01T00:00:00Z',
  });
  t.same(show('2026-11-25T20:00:00Z', 'America/New_York'), {
    day: '2026-11-25',
    dayStarts: '2026-11-25T05:00:00Z',
    dayResets: '2026-11-26T05:00:00Z',
    month: '2026-11-01',
    monthResets: '2026-12-01T05:00:00Z',
  });
  t.same(show('2026-11-25T20:00:00Z', 'Asia/Tokyo'), {
    day: '2026-11-26',
    dayStarts: '2026-11-25T15:00:00Z',
    dayResets: '2026-11-26T15:00:00Z',
    month: '2026-11-01',
    monthResets: '2026-11-30T15:00:00Z',
  });
  t.same(show('2026-12-31T20:00:00Z', 'Asia/Kolkata'), {
    day: '2027-01-01',
    dayStarts: '2026-12-31T18:30:00Z',
    dayResets: '2027-01-01T18:30:00Z',
    month: '2027-01-01',
    monthResets: '2027-01-31T18:30:00Z',
  });
});

t.test('periodsAt follows DST: 23-hour days, and a day that starts at 01:00', async (t) => {
  t.same(
    show('2026-03-08T12:00:00Z', 'America/New_York').dayResets,
    '2026-03-09T04:00:00Z',
    'spring forward: a 23-hour day',
  );
  t.same(
    show('2026-11-01T12:00:00Z', 'America/New_York').dayResets,
    '2026-11-02T05:00:00Z',
    'fall back: a 25-hour day',
  );
  // São Paulo 2018-11-04: clocks went from 00:00 straight to 01:00, so that day began at 01:00 -02 = 03:00Z.
  t.same(show('2018-11-03T12:00:00Z', 'America/Sao_Paulo').dayResets, '2018-11-04T03:00:00Z');
  t.same(show('2018-11-04T12:00:00Z', 'America/Sao_Paulo').dayStarts, '2018-11-04T03:00:00Z');
});

t.test('periodsAt skips a calendar day that a zone skipped (Samoa, 2011-12-30)', async (t) => {
  const p = show('2011-12-29T12:00:00Z', 'Pacific/Apia');
  t.equal(p.day, '2011-12-29');
  t.equal(p.dayResets, '2011-12-30T10:00:00Z', 'the next day to start is the 31st, at 00:00 +14');
  t.equal(show('2011-12-30T10:00:00Z', 'Pacific/Apia').day, '2011-12-31');
});

t.test('safeTimeZone falls back to UTC for a zone Intl does not know', async (t) => {
  t.equal(safeTimeZone('Europe/Berlin'), 'Europe/Berlin');
  t.equal(safeTimeZone('Not/AZone'), 'UTC');
  t.equal(safeTimeZone(''), 'UTC');
  t.same(show('2026-11-25T20:00:00Z', 'Not/AZone').dayResets, '2026-11-26T00:00:00Z');
});

t.test('createPeriodClock reuses the answer within the day and recomputes at the boundary', async (t) => {
  const clock = createPeriodClock();
  const a = clock(at('2026-11-25T10:00:00Z'), 'UTC');
  t.equal(clock(at('2026-11-25T23:59:59Z'), 'UTC'), a, 'same object within the day');
  const b = clock(at('2026-11-26T00:00:00Z'), 'UTC');
  t.not(b, a);
  t.equal(b.daily.date, '2026-11-26');
  t.equal(clock(at('2026-11-25T10:00:00Z'), 'UTC').daily.date, '2026-11-25', 'going back in time recomputes too');
});

t.test('isoSeconds prints UTC without milliseconds', async (t) => {
  t.equal(isoSeconds(at('2026-11-26T00:00:00.000Z')), '2026-11-26T00:00:00Z');
});

t.test(
  'isoSeconds drops the milliseconds, and keeps answering right across repeated and changing instants',
  async (t) => {
    const midnight = Date.UTC(2026, 10, 26);
    t.equal(isoSeconds(midnight), '2026-11-26T00:00:00Z');
    t.equal(isoSeconds(midnight), '2026-11-26T00:00:00Z', 'the kept answer');
    t.equal(isoSeconds(midnight + 1_999), '2026-11-26T00:00:01Z');
    t.equal(isoSeconds(midnight), '2026-11-26T00:00:00Z', 'back to the first instant');
    t.throws(() => isoSeconds(Number.NaN), RangeError);
  },
);
