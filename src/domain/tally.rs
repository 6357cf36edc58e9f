//! Counting a poll's ballots: plurality for single and multiple choice, instant run-off for
//! ranked choice. Pure functions of the ballots, so the same ballots always give the same result
//! (golden tests below).
//!
//! **Single / multiple choice:** each option's count is the ballots that name it; the winner is
//! the option with the most, or none when several share the most (a tie) or nobody voted.
//!
//! **Ranked choice (instant run-off):** each round counts every ballot for its highest-ranked
//! option still in the running; ballots whose options are all out are exhausted and no longer
//! count. An option with more than half of the ballots still counting wins. Otherwise the option
//! with the fewest votes is eliminated. **Tie rule:** when several share the fewest, the earlier
//! rounds are looked at, latest first, and the one with fewer votes there is eliminated; if they
//! were level in every round, all of them are eliminated together. When every option still in the
//! running has the same count, nobody wins (a tie). No option is ever preferred for its place in
//! the list.

use serde::Serialize;

/// How members vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Single,
    Multiple,
    Ranked,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Single => "single",
            Mode::Multiple => "multiple",
            Mode::Ranked => "ranked",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "single" => Mode::Single,
            "multiple" => Mode::Multiple,
            "ranked" => Mode::Ranked,
            _ => return None,
        })
    }
}

/// The count of a poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Ballots naming each option (ranked: as first choice).
    pub counts: Vec<u64>,
    /// Members who voted.
    pub voters: u64,
    pub winner: Option<usize>,
    /// Ranked only: each round's count per option, `None` once it is eliminated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rounds: Option<Vec<Vec<Option<u64>>>>,
}

/// Why a ballot is refused.
pub fn check_ballot(mode: Mode, options: usize, choices: &[usize]) -> Result<(), String> {
    if choices.is_empty() {
        return Err("choose at least one option".into());
    }
    if let Some(bad) = choices.iter().find(|c| **c >= options) {
        return Err(format!(
            "option {bad} does not exist (options are 0 to {})",
            options - 1
        ));
    }
    let mut seen = vec![false; options];
    for c in choices {
        if std::mem::replace(&mut seen[*c], true) {
            return Err(format!("option {c} is chosen twice"));
        }
    }
    if mode == Mode::Single && choices.len() != 1 {
        return Err("this poll takes exactly one choice".into());
    }
    Ok(())
}

/// Counts `ballots` (each already checked with [`check_ballot`]).
pub fn tally(mode: Mode, options: usize, ballots: &[Vec<usize>]) -> Tally {
    let mut counts = vec![0u64; options];
    for b in ballots {
        match mode {
            Mode::Ranked => {
                if let Some(first) = b.first() {
                    counts[*first] += 1;
                }
            }
            Mode::Single | Mode::Multiple => {
                for c in b {
                    counts[*c] += 1;
                }
            }
        }
    }
    let voters = ballots.len() as u64;
    match mode {
        Mode::Single | Mode::Multiple => {
            let winner = plurality(&counts);
            Tally {
                counts,
                voters,
                winner,
                rounds: None,
            }
        }
        Mode::Ranked => {
            let (winner, rounds) = run_off(options, ballots);
            Tally {
                counts,
                voters,
                winner,
                rounds: Some(rounds),
            }
        }
    }
}

/// The one option with the most votes, if one has more than every other.
fn plurality(counts: &[u64]) -> Option<usize> {
    let max = *counts.iter().max()?;
    let mut top = counts.iter().enumerate().filter(|(_, c)| **c == max);
    let (i, _) = top.next()?;
    (max > 0 && top.next().is_none()).then_some(i)
}

fn run_off(options: usize, ballots: &[Vec<usize>]) -> (Option<usize>, Vec<Vec<Option<u64>>>) {
    let mut running = vec![true; options];
    let mut rounds: Vec<Vec<Option<u64>>> = Vec::new();
    if ballots.is_empty() {
        return (None, rounds);
    }
    loop {
        let mut count: Vec<Option<u64>> = running
            .iter()
            .map(|r| if *r { Some(0) } else { None })
            .collect();
        let mut active = 0u64;
        for b in ballots {
            if let Some(c) = b.iter().find(|c| running[**c]) {
                *count[*c].as_mut().expect("a running option is counted") += 1;
                active += 1;
            }
        }
        rounds.push(count.clone());
        if active == 0 {
            return (None, rounds);
        }
        let in_race: Vec<(usize, u64)> = count
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.map(|c| (i, c)))
            .collect();
        if let Some((i, _)) = in_race.iter().find(|(_, c)| 2 * c > active) {
            return (Some(*i), rounds);
        }
        let min = in_race
            .iter()
            .map(|(_, c)| *c)
            .min()
            .expect("options remain");
        let mut lowest: Vec<usize> = in_race
            .iter()
            .filter(|(_, c)| *c == min)
            .map(|(i, _)| *i)
            .collect();
        if lowest.len() == in_race.len() {
            return (None, rounds);
        }
        // Earlier rounds, latest first, break a tie for the fewest.
        for earlier in rounds.iter().rev().skip(1) {
            if lowest.len() == 1 {
                break;
            }
            let fewest = lowest.iter().filter_map(|i| earlier[*i]).min().unwrap_or(0);
            lowest.retain(|i| earlier[*i].unwrap_or(0) == fewest);
        }
        for i in lowest {
            running[i] = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn many(n: usize, ballot: &[usize]) -> Vec<Vec<usize>> {
        vec![ballot.to_vec(); n]
    }

    #[test]
    fn plurality_has_a_winner_only_without_a_tie() {
        let t = tally(Mode::Single, 3, &[vec![1], vec![1], vec![0]]);
        assert_eq!(t.counts, [1, 2, 0]);
        assert_eq!((t.voters, t.winner, t.rounds), (3, Some(1), None));
        let t = tally(Mode::Single, 2, &[vec![1], vec![0]]);
        assert_eq!(t.winner, None);
        let t = tally(Mode::Multiple, 3, &[vec![0, 2], vec![2], vec![0, 1, 2]]);
        assert_eq!(t.counts, [2, 1, 3]);
        assert_eq!((t.voters, t.winner), (3, Some(2)));
        assert_eq!(tally(Mode::Multiple, 2, &[]).winner, None);
    }

    /// Plurality would pick A; C's voters prefer B, and B wins the run-off.
    #[test]
    fn run_off_transfers_the_eliminated_votes() {
        let mut b = many(4, &[0]);
        b.extend(many(3, &[1, 0]));
        b.extend(many(2, &[2, 1]));
        let t = tally(Mode::Ranked, 3, &b);
        assert_eq!(t.counts, [4, 3, 2]);
        assert_eq!(
            t.rounds.unwrap(),
            [
                vec![Some(4), Some(3), Some(2)],
                vec![Some(4), Some(5), None]
            ]
        );
        assert_eq!(t.winner, Some(1));
    }

    #[test]
    fn a_majority_in_the_first_round_wins_at_once() {
        let t = tally(Mode::Ranked, 3, &[vec![2, 0], vec![2], vec![0, 1]]);
        assert_eq!(t.rounds.unwrap(), [vec![Some(1), Some(0), Some(2)]]);
        assert_eq!(t.winner, Some(2));
    }

    /// B and C tie for the fewest in round 2; B had fewer in round 1, so B goes, and its ballots
    /// carry C past A. (Eliminating C instead would have made A win.)
    #[test]
    fn a_tie_for_the_fewest_is_broken_by_the_earlier_round() {
        let mut b = many(7, &[0]);
        b.extend(many(4, &[1, 2]));
        b.extend(many(5, &[2, 0]));
        b.push(vec![3, 1, 2]);
        let t = tally(Mode::Ranked, 4, &b);
        assert_eq!(
            t.rounds.unwrap(),
            [
                vec![Some(7), Some(4), Some(5), Some(1)],
                vec![Some(7), Some(5), Some(5), None],
                vec![Some(7), None, Some(10), None],
            ]
        );
        assert_eq!(t.winner, Some(2));
    }

    /// B and C level in every round are eliminated together; exhausted ballots stop counting,
    /// so A's 3 of the 3 still counting is a majority.
    #[test]
    fn options_level_throughout_go_together_and_exhausted_ballots_drop_out() {
        let mut b = many(3, &[0]);
        b.extend(many(2, &[1]));
        b.extend(many(2, &[2]));
        let t = tally(Mode::Ranked, 3, &b);
        assert_eq!(
            t.rounds.unwrap(),
            [vec![Some(3), Some(2), Some(2)], vec![Some(3), None, None]]
        );
        assert_eq!((t.winner, t.voters), (Some(0), 7));
    }

    #[test]
    fn a_level_race_has_no_winner_and_no_ballots_no_rounds() {
        let t = tally(Mode::Ranked, 2, &[vec![0, 1], vec![1, 0]]);
        assert_eq!(t.rounds.unwrap(), [vec![Some(1), Some(1)]]);
        assert_eq!(t.winner, None);
        // Zero-vote options go first; the list order never decides.
        let t = tally(Mode::Ranked, 4, &[vec![3, 0], vec![0, 3]]);
        assert_eq!(
            t.rounds.unwrap(),
            [
                vec![Some(1), Some(0), Some(0), Some(1)],
                vec![Some(1), None, None, Some(1)],
            ]
        );
        assert_eq!(t.winner, None);
        let t = tally(Mode::Ranked, 3, &[]);
        assert_eq!((t.winner, t.rounds.unwrap().len()), (None, 0));
    }

    #[test]
    fn ballots_are_checked_against_the_mode() {
        assert!(check_ballot(Mode::Single, 3, &[1]).is_ok());
        assert!(check_ballot(Mode::Single, 3, &[0, 1]).is_err());
        assert!(check_ballot(Mode::Multiple, 3, &[0, 2]).is_ok());
        assert!(check_ballot(Mode::Ranked, 3, &[2, 0, 1]).is_ok());
        for bad in [&[][..], &[3], &[1, 1]] {
            assert!(check_ballot(Mode::Ranked, 3, bad).is_err(), "{bad:?}");
        }
    }
}
