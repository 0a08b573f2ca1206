//! Shamir secret sharing over GF(2^8), in the layout sops uses (inherited from Vault): each
//! share is the secret's length of y values followed by one byte, its x coordinate (1..=255,
//! distinct). The field is the AES one (x^8 + x^4 + x^3 + x + 1), so shares written here and
//! by sops combine either way.

use rand::seq::SliceRandom;
use rand::RngCore;
use zeroize::Zeroizing;

fn mul(a: u8, b: u8) -> u8 {
    let (mut a, mut b, mut r) = (a, b, 0u8);
    while b != 0 {
        if b & 1 != 0 {
            r ^= a;
        }
        let carry = a & 0x80 != 0;
        a <<= 1;
        if carry {
            a ^= 0x1b;
        }
        b >>= 1;
    }
    r
}

fn inv(a: u8) -> u8 {
    // a^254 = a^-1 for a != 0.
    let mut r = 1u8;
    let mut base = a;
    let mut e = 254u32;
    while e > 0 {
        if e & 1 != 0 {
            r = mul(r, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    r
}

/// Splits `secret` into `parts` shares of which any `threshold` rebuild it.
/// `2 <= threshold <= parts <= 255`, checked by the caller.
pub(crate) fn split(secret: &[u8], parts: usize, threshold: usize) -> Vec<Zeroizing<Vec<u8>>> {
    let mut rng = rand::rngs::OsRng;
    let mut xs: Vec<u8> = (1..=255u8).collect();
    xs.shuffle(&mut rng);
    let mut out: Vec<Zeroizing<Vec<u8>>> = (0..parts)
        .map(|i| {
            let mut v = Zeroizing::new(vec![0u8; secret.len() + 1]);
            v[secret.len()] = xs[i];
            v
        })
        .collect();
    let mut coeffs = Zeroizing::new(vec![0u8; threshold]);
    for (j, &s) in secret.iter().enumerate() {
        coeffs[0] = s;
        rng.fill_bytes(&mut coeffs[1..]);
        for share in out.iter_mut() {
            let x = share[secret.len()];
            // Horner's rule.
            let mut y = 0u8;
            for &c in coeffs.iter().rev() {
                y = mul(y, x) ^ c;
            }
            share[j] = y;
        }
    }
    out
}

/// Rebuilds the secret from shares of equal length with distinct x coordinates; `None` when
/// they are not.
pub(crate) fn combine(shares: &[&[u8]]) -> Option<Zeroizing<Vec<u8>>> {
    let len = shares.first()?.len();
    if len < 2 || shares.len() < 2 || shares.iter().any(|s| s.len() != len) {
        return None;
    }
    let xs: Vec<u8> = shares.iter().map(|s| s[len - 1]).collect();
    for (i, x) in xs.iter().enumerate() {
        if *x == 0 || xs[..i].contains(x) {
            return None;
        }
    }
    let mut out = Zeroizing::new(vec![0u8; len - 1]);
    for (j, byte) in out.iter_mut().enumerate() {
        let mut acc = 0u8;
        for (i, share) in shares.iter().enumerate() {
            let mut basis = 1u8;
            for (k, xk) in xs.iter().enumerate() {
                if k != i {
                    // (0 - xk) / (xi - xk); subtraction is xor.
                    basis = mul(basis, mul(*xk, inv(xs[i] ^ xk)));
                }
            }
            acc ^= mul(share[j], basis);
        }
        *byte = acc;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field() {
        assert_eq!(mul(0x57, 0x83), 0xc1);
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1);
        }
    }

    #[test]
    fn any_two_of_three_rebuild() {
        let secret: Vec<u8> = (0..32).collect();
        let shares = split(&secret, 3, 2);
        for (a, b) in [(0, 1), (1, 2), (0, 2)] {
            let got = combine(&[&shares[a], &shares[b]]).unwrap();
            assert_eq!(got.as_slice(), secret.as_slice());
        }
        let all: Vec<&[u8]> = shares.iter().map(|s| s.as_slice()).collect();
        assert_eq!(combine(&all).unwrap().as_slice(), secret.as_slice());
        let one = combine(&[&shares[0]]);
        assert!(one.is_none());
    }
}
