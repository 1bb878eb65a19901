"""The AI Feynman benchmark: the 100 laws of the Feynman Symbolic Regression Database and its 20 bonus laws.

Written from the paper's tables of equations with variable ranges (Udrescu & Tegmark 2020; the same
formulas and ranges as ``FeynmanEquations.csv`` and ``BonusEquations.csv`` of
https://space.mit.edu/home/tegmark/aifeynman.html, which SRBench's ``feynman_*`` datasets sample). Each law
is data: its name, its formula in the equation grammar (:func:`sciml_lab.symreg.grammar.parse_equation`,
which builds sympy objects without evaluating code; ``arcsin``/``arccos`` are mapped to sympy's inverse
functions) and its variables with their sampling ranges (uniform in each range, as in the database). ``ln``
is written ``log``; II.37.1 has its three variables (the csv's count says six).

Held-out split (fixed, never used while developing the search): the laws are ordered by the SHA-256 hex
digest of their name and the first third (40 of 120) form the held-out part, the other 80 the
development part. :data:`HELDOUT` lists them; the split depends on nothing but the names.

References:
    Udrescu & Tegmark, "AI Feynman: a physics-inspired method for symbolic regression", Science Advances 6
    (2020) eaay2631, https://doi.org/10.1126/sciadv.aay2631;
    La Cava et al., "Contemporary symbolic regression methods and their relative performance" (SRBench,
    NeurIPS 2021), https://arxiv.org/abs/2107.14351.
"""

from __future__ import annotations

import hashlib

from problems import Problem

__all__ = ["LAWS", "BONUS", "FEYNMAN", "HELDOUT", "DEV", "part"]

R15, R13, R12 = (1, 5), (1, 3), (1, 2)

# (name, formula, {variable: (low, high)}), in the database's order
LAWS: list[Problem] = [Problem(f"feynman-{n}", dict(v), f) for n, f, v in [
    ("I.6.2a", "exp(-theta**2/2)/sqrt(2*pi)", [("theta", R13)]),
    ("I.6.2", "exp(-(theta/sigma)**2/2)/(sqrt(2*pi)*sigma)", [("sigma", R13), ("theta", R13)]),
    ("I.6.2b", "exp(-((theta-theta1)/sigma)**2/2)/(sqrt(2*pi)*sigma)",
     [("sigma", R13), ("theta", R13), ("theta1", R13)]),
    ("I.8.14", "sqrt((x2-x1)**2+(y2-y1)**2)", [("x1", R15), ("x2", R15), ("y1", R15), ("y2", R15)]),
    ("I.9.18", "G*m1*m2/((x2-x1)**2+(y2-y1)**2+(z2-z1)**2)",
     [("m1", R12), ("m2", R12), ("G", R12), ("x1", (3, 4)), ("x2", R12), ("y1", (3, 4)), ("y2", R12),
      ("z1", (3, 4)), ("z2", R12)]),
    ("I.10.7", "m_0/sqrt(1-v**2/c**2)", [("m_0", R15), ("v", R12), ("c", (3, 10))]),
    ("I.11.19", "x1*y1+x2*y2+x3*y3", [("x1", R15), ("x2", R15), ("x3", R15), ("y1", R15), ("y2", R15),
                                      ("y3", R15)]),
    ("I.12.1", "mu*Nn", [("mu", R15), ("Nn", R15)]),
    ("I.12.2", "q1*q2*r/(4*pi*epsilon*r**3)", [("q1", R15), ("q2", R15), ("epsilon", R15), ("r", R15)]),
    ("I.12.4", "q1*r/(4*pi*epsilon*r**3)", [("q1", R15), ("epsilon", R15), ("r", R15)]),
    ("I.12.5", "q2*Ef", [("q2", R15), ("Ef", R15)]),
    ("I.12.11", "q*(Ef+B*v*sin(theta))", [("q", R15), ("Ef", R15), ("B", R15), ("v", R15), ("theta", R15)]),
    ("I.13.4", "1/2*m*(v**2+u**2+w**2)", [("m", R15), ("v", R15), ("u", R15), ("w", R15)]),
    ("I.13.12", "G*m1*m2*(1/r2-1/r1)", [("m1", R15), ("m2", R15), ("r1", R15), ("r2", R15), ("G", R15)]),
    ("I.14.3", "m*g*z", [("m", R15), ("g", R15), ("z", R15)]),
    ("I.14.4", "1/2*k_spring*x**2", [("k_spring", R15), ("x", R15)]),
    ("I.15.3x", "(x-u*t)/sqrt(1-u**2/c**2)", [("x", (5, 10)), ("u", R12), ("c", (3, 20)), ("t", R12)]),
    ("I.15.3t", "(t-u*x/c**2)/sqrt(1-u**2/c**2)", [("x", R15), ("c", (3, 10)), ("u", R12), ("t", R15)]),
    ("I.15.1", "m_0*v/sqrt(1-v**2/c**2)", [("m_0", R15), ("v", R12), ("c", (3, 10))]),
    ("I.16.6", "(u+v)/(1+u*v/c**2)", [("c", R15), ("v", R15), ("u", R15)]),
    ("I.18.4", "(m1*r1+m2*r2)/(m1+m2)", [("m1", R15), ("m2", R15), ("r1", R15), ("r2", R15)]),
    ("I.18.12", "r*F*sin(theta)", [("r", R15), ("F", R15), ("theta", (0, 5))]),
    ("I.18.14", "m*r*v*sin(theta)", [("m", R15), ("r", R15), ("v", R15), ("theta", R15)]),
    ("I.24.6", "1/2*m*(omega**2+omega_0**2)*1/2*x**2", [("m", R13), ("omega", R13), ("omega_0", R13), ("x", R13)]),
    ("I.25.13", "q/C", [("q", R15), ("C", R15)]),
    ("I.26.2", "arcsin(n*sin(theta2))", [("n", (0, 1)), ("theta2", R15)]),
    ("I.27.6", "1/(1/d1+n/d2)", [("d1", R15), ("d2", R15), ("n", R15)]),
    ("I.29.4", "omega/c", [("omega", (1, 10)), ("c", (1, 10))]),
    ("I.29.16", "sqrt(x1**2+x2**2-2*x1*x2*cos(theta1-theta2))",
     [("x1", R15), ("x2", R15), ("theta1", R15), ("theta2", R15)]),
    ("I.30.3", "Int_0*sin(n*theta/2)**2/sin(theta/2)**2", [("Int_0", R15), ("theta", R15), ("n", R15)]),
    ("I.30.5", "arcsin(lambd/(n*d))", [("lambd", R12), ("d", (2, 5)), ("n", R15)]),
    ("I.32.5", "q**2*a**2/(6*pi*epsilon*c**3)", [("q", R15), ("a", R15), ("epsilon", R15), ("c", R15)]),
    ("I.32.17", "(1/2*epsilon*c*Ef**2)*(8*pi*r**2/3)*(omega**4/(omega**2-omega_0**2)**2)",
     [("epsilon", R12), ("c", R12), ("Ef", R12), ("r", R12), ("omega", R12), ("omega_0", (3, 5))]),
    ("I.34.8", "q*v*B/p", [("q", R15), ("v", R15), ("B", R15), ("p", R15)]),
    ("I.34.1", "omega_0/(1-v/c)", [("c", (3, 10)), ("v", R12), ("omega_0", R15)]),
    ("I.34.14", "(1+v/c)/sqrt(1-v**2/c**2)*omega_0", [("c", (3, 10)), ("v", R12), ("omega_0", R15)]),
    ("I.34.27", "(h/(2*pi))*omega", [("omega", R15), ("h", R15)]),
    ("I.37.4", "I1+I2+2*sqrt(I1*I2)*cos(delta)", [("I1", R15), ("I2", R15), ("delta", R15)]),
    ("I.38.12", "4*pi*epsilon*(h/(2*pi))**2/(m*q**2)", [("m", R15), ("q", R15), ("h", R15), ("epsilon", R15)]),
    ("I.39.1", "3/2*pr*V", [("pr", R15), ("V", R15)]),
    ("I.39.11", "1/(gamma-1)*pr*V", [("gamma", (2, 5)), ("pr", R15), ("V", R15)]),
    ("I.39.22", "n*kb*T/V", [("n", R15), ("T", R15), ("V", R15), ("kb", R15)]),
    ("I.40.1", "n_0*exp(-m*g*x/(kb*T))", [("n_0", R15), ("m", R15), ("x", R15), ("T", R15), ("g", R15),
                                           ("kb", R15)]),
    ("I.41.16", "h/(2*pi)*omega**3/(pi**2*c**2*(exp((h/(2*pi))*omega/(kb*T))-1))",
     [("omega", R15), ("T", R15), ("h", R15), ("kb", R15), ("c", R15)]),
    ("I.43.16", "mu_drift*q*Volt/d", [("mu_drift", R15), ("q", R15), ("Volt", R15), ("d", R15)]),
    ("I.43.31", "mob*kb*T", [("mob", R15), ("T", R15), ("kb", R15)]),
    ("I.43.43", "1/(gamma-1)*kb*v/A", [("gamma", (2, 5)), ("kb", R15), ("A", R15), ("v", R15)]),
    ("I.44.4", "n*kb*T*log(V2/V1)", [("n", R15), ("kb", R15), ("T", R15), ("V1", R15), ("V2", R15)]),
    ("I.47.23", "sqrt(gamma*pr/rho)", [("gamma", R15), ("pr", R15), ("rho", R15)]),
    ("I.48.2", "m*c**2/sqrt(1-v**2/c**2)", [("m", R15), ("v", R12), ("c", (3, 10))]),
    ("I.50.26", "x1*(cos(omega*t)+alpha*cos(omega*t)**2)", [("x1", R13), ("omega", R13), ("t", R13),
                                                             ("alpha", R13)]),
    ("II.2.42", "kappa*(T2-T1)*A/d", [("kappa", R15), ("T1", R15), ("T2", R15), ("A", R15), ("d", R15)]),
    ("II.3.24", "Pwr/(4*pi*r**2)", [("Pwr", R15), ("r", R15)]),
    ("II.4.23", "q/(4*pi*epsilon*r)", [("q", R15), ("epsilon", R15), ("r", R15)]),
    ("II.6.11", "1/(4*pi*epsilon)*p_d*cos(theta)/r**2", [("epsilon", R13), ("p_d", R13), ("theta", R13),
                                                          ("r", R13)]),
    ("II.6.15a", "p_d/(4*pi*epsilon)*3*z/r**5*sqrt(x**2+y**2)",
     [("epsilon", R13), ("p_d", R13), ("r", R13), ("x", R13), ("y", R13), ("z", R13)]),
    ("II.6.15b", "p_d/(4*pi*epsilon)*3*cos(theta)*sin(theta)/r**3",
     [("epsilon", R13), ("p_d", R13), ("theta", R13), ("r", R13)]),
    ("II.8.7", "3/5*q**2/(4*pi*epsilon*d)", [("q", R15), ("epsilon", R15), ("d", R15)]),
    ("II.8.31", "epsilon*Ef**2/2", [("epsilon", R15), ("Ef", R15)]),
    ("II.10.9", "sigma_den/epsilon*1/(1+chi)", [("sigma_den", R15), ("epsilon", R15), ("chi", R15)]),
    ("II.11.3", "q*Ef/(m*(omega_0**2-omega**2))", [("q", R13), ("Ef", R13), ("m", R13), ("omega_0", (3, 5)),
                                                   ("omega", R12)]),
    ("II.11.17", "n_0*(1+p_d*Ef*cos(theta)/(kb*T))", [("n_0", R13), ("kb", R13), ("T", R13), ("theta", R13),
                                                      ("p_d", R13), ("Ef", R13)]),
    ("II.11.20", "n_rho*p_d**2*Ef/(3*kb*T)", [("n_rho", R15), ("p_d", R15), ("Ef", R15), ("kb", R15),
                                              ("T", R15)]),
    ("II.11.27", "n*alpha/(1-(n*alpha/3))*epsilon*Ef", [("n", (0, 1)), ("alpha", (0, 1)), ("epsilon", R12),
                                                        ("Ef", R12)]),
    ("II.11.28", "1+n*alpha/(1-(n*alpha/3))", [("n", (0, 1)), ("alpha", (0, 1))]),
    ("II.13.17", "1/(4*pi*epsilon*c**2)*2*I/r", [("epsilon", R15), ("c", R15), ("I", R15), ("r", R15)]),
    ("II.13.23", "rho_c_0/sqrt(1-v**2/c**2)", [("rho_c_0", R15), ("v", R12), ("c", (3, 10))]),
    ("II.13.34", "rho_c_0*v/sqrt(1-v**2/c**2)", [("rho_c_0", R15), ("v", R12), ("c", (3, 10))]),
    ("II.15.4", "-mom*B*cos(theta)", [("mom", R15), ("B", R15), ("theta", R15)]),
    ("II.15.5", "-p_d*Ef*cos(theta)", [("p_d", R15), ("Ef", R15), ("theta", R15)]),
    ("II.21.32", "q/(4*pi*epsilon*r*(1-v/c))", [("q", R15), ("epsilon", R15), ("r", R15), ("v", R12),
                                                ("c", (3, 10))]),
    ("II.24.17", "sqrt(omega**2/c**2-pi**2/d**2)", [("omega", (4, 6)), ("c", R12), ("d", (2, 4))]),
    ("II.27.16", "epsilon*c*Ef**2", [("epsilon", R15), ("c", R15), ("Ef", R15)]),
    ("II.27.18", "epsilon*Ef**2", [("epsilon", R15), ("Ef", R15)]),
    ("II.34.2a", "q*v/(2*pi*r)", [("q", R15), ("v", R15), ("r", R15)]),
    ("II.34.2", "q*v*r/2", [("q", R15), ("v", R15), ("r", R15)]),
    ("II.34.11", "g_*q*B/(2*m)", [("g_", R15), ("q", R15), ("B", R15), ("m", R15)]),
    ("II.34.29a", "q*h/(4*pi*m)", [("q", R15), ("h", R15), ("m", R15)]),
    ("II.34.29b", "g_*mom*B*Jz/(h/(2*pi))", [("g_", R15), ("h", R15), ("Jz", R15), ("mom", R15), ("B", R15)]),
    ("II.35.18", "n_0/(exp(mom*B/(kb*T))+exp(-mom*B/(kb*T)))", [("n_0", R13), ("kb", R13), ("T", R13),
                                                                ("mom", R13), ("B", R13)]),
    ("II.35.21", "n_rho*mom*tanh(mom*B/(kb*T))", [("n_rho", R15), ("mom", R15), ("B", R15), ("kb", R15),
                                                  ("T", R15)]),
    ("II.36.38", "mom*H/(kb*T)+(mom*alpha)/(epsilon*c**2*kb*T)*M",
     [("mom", R13), ("H", R13), ("kb", R13), ("T", R13), ("alpha", R13), ("epsilon", R13), ("c", R13),
      ("M", R13)]),
    ("II.37.1", "mom*(1+chi)*B", [("mom", R15), ("B", R15), ("chi", R15)]),
    ("II.38.3", "Y*A*x/d", [("Y", R15), ("A", R15), ("d", R15), ("x", R15)]),
    ("II.38.14", "Y/(2*(1+sigma))", [("Y", R15), ("sigma", R15)]),
    ("III.4.32", "1/(exp((h/(2*pi))*omega/(kb*T))-1)", [("h", R15), ("omega", R15), ("kb", R15), ("T", R15)]),
    ("III.4.33", "(h/(2*pi))*omega/(exp((h/(2*pi))*omega/(kb*T))-1)",
     [("h", R15), ("omega", R15), ("kb", R15), ("T", R15)]),
    ("III.7.38", "2*mom*B/(h/(2*pi))", [("mom", R15), ("B", R15), ("h", R15)]),
    ("III.8.54", "sin(E_n*t/(h/(2*pi)))**2", [("E_n", R12), ("t", R12), ("h", (1, 4))]),
    ("III.9.52", "(p_d*Ef*t/(h/(2*pi)))*sin((omega-omega_0)*t/2)**2/((omega-omega_0)*t/2)**2",
     [("p_d", R13), ("Ef", R13), ("t", R13), ("h", R13), ("omega", R15), ("omega_0", R15)]),
    ("III.10.19", "mom*sqrt(Bx**2+By**2+Bz**2)", [("mom", R15), ("Bx", R15), ("By", R15), ("Bz", R15)]),
    ("III.12.43", "n*(h/(2*pi))", [("n", R15), ("h", R15)]),
    ("III.13.18", "2*E_n*d**2*k/(h/(2*pi))", [("E_n", R15), ("d", R15), ("k", R15), ("h", R15)]),
    ("III.14.14", "I_0*(exp(q*Volt/(kb*T))-1)", [("I_0", R15), ("q", R12), ("Volt", R12), ("kb", R12),
                                                 ("T", R12)]),
    ("III.15.12", "2*U*(1-cos(k*d))", [("U", R15), ("k", R15), ("d", R15)]),
    ("III.15.14", "(h/(2*pi))**2/(2*E_n*d**2)", [("h", R15), ("E_n", R15), ("d", R15)]),
    ("III.15.27", "2*pi*alpha/(n*d)", [("alpha", R15), ("n", R15), ("d", R15)]),
    ("III.17.37", "beta*(1+alpha*cos(theta))", [("beta", R15), ("alpha", R15), ("theta", R15)]),
    ("III.19.51", "-m*q**4/(2*(4*pi*epsilon)**2*(h/(2*pi))**2)*(1/n**2)",
     [("m", R15), ("q", R15), ("h", R15), ("n", R15), ("epsilon", R15)]),
    ("III.21.20", "-rho_c_0*q*A_vec/m", [("rho_c_0", R15), ("q", R15), ("A_vec", R15), ("m", R15)]),
]]

BONUS: list[Problem] = [Problem(f"feynman-{n}", dict(v), f) for n, f, v in [
    ("test_1", "(Z_1*Z_2*alpha*hbar*c/(4*E_n*sin(theta/2)**2))**2",
     [("Z_1", R12), ("Z_2", R12), ("alpha", R12), ("hbar", R12), ("c", R12), ("E_n", R13), ("theta", R13)]),
    ("test_2", "m*k_G/L**2*(1+sqrt(1+2*E_n*L**2/(m*k_G**2))*cos(theta1-theta2))",
     [("m", R13), ("k_G", R13), ("L", R13), ("E_n", R13), ("theta1", (0, 6)), ("theta2", (0, 6))]),
    ("test_3", "d*(1-alpha**2)/(1+alpha*cos(theta1-theta2))",
     [("d", R13), ("alpha", (2, 4)), ("theta1", (4, 5)), ("theta2", (4, 5))]),
    ("test_4", "sqrt(2/m*(E_n-U-L**2/(2*m*r**2)))", [("m", R13), ("E_n", (8, 12)), ("U", R13), ("L", R13),
                                                     ("r", R13)]),
    ("test_5", "2*pi*d**(3/2)/sqrt(G*(m1+m2))", [("d", R13), ("G", R13), ("m1", R13), ("m2", R13)]),
    ("test_6", "sqrt(1+2*epsilon**2*E_n*L**2/(m*(Z_1*Z_2*q**2)**2))",
     [("epsilon", R13), ("L", R13), ("m", R13), ("Z_1", R13), ("Z_2", R13), ("q", R13), ("E_n", R13)]),
    ("test_7", "sqrt(8*pi*G*rho/3-alpha*c**2/d**2)", [("G", R13), ("rho", R13), ("alpha", R12), ("c", R12),
                                                      ("d", R13)]),
    ("test_8", "E_n/(1+E_n/(m*c**2)*(1-cos(theta)))", [("E_n", R13), ("m", R13), ("c", R13), ("theta", R13)]),
    ("test_9", "-32/5*G**4/c**5*(m1*m2)**2*(m1+m2)/r**5", [("G", R12), ("c", R12), ("m1", R15), ("m2", R15),
                                                           ("r", R12)]),
    ("test_10", "arccos((cos(theta2)-v/c)/(1-v/c*cos(theta2)))", [("c", (4, 6)), ("v", R13), ("theta2", R13)]),
    ("test_11", "I_0*(sin(alpha/2)*sin(n*delta/2)/(alpha/2*sin(delta/2)))**2",
     [("I_0", R13), ("alpha", R13), ("delta", R13), ("n", R12)]),
    ("test_12", "q/(4*pi*epsilon*y**2)*(4*pi*epsilon*Volt*d-q*d*y**3/(y**2-d**2)**2)",
     [("q", R15), ("y", R13), ("Volt", R15), ("d", (4, 6)), ("epsilon", R15)]),
    ("test_13", "1/(4*pi*epsilon)*q/sqrt(r**2+d**2-2*r*d*cos(alpha))",
     [("q", R15), ("r", R13), ("d", (4, 6)), ("alpha", (0, 6)), ("epsilon", R15)]),
    ("test_14", "Ef*cos(theta)*(-r+d**3/r**2*(alpha-1)/(alpha+2))",
     [("Ef", R15), ("theta", (0, 6)), ("r", R15), ("d", R15), ("alpha", R15)]),
    ("test_15", "sqrt(1-v**2/c**2)*omega/(1+v/c*cos(theta))",
     [("c", (5, 20)), ("v", R13), ("omega", R15), ("theta", (0, 6))]),
    ("test_16", "sqrt((p-q*A_vec)**2*c**2+m**2*c**4)+q*Volt",
     [("m", R15), ("c", R15), ("p", R15), ("q", R15), ("A_vec", R15), ("Volt", R15)]),
    ("test_17", "1/(2*m)*(p**2+m**2*omega**2*x**2*(1+alpha*x/y))",
     [("m", R15), ("omega", R15), ("p", R15), ("y", R15), ("x", R15), ("alpha", R15)]),
    ("test_18", "3/(8*pi*G)*(c**2*k_f/r**2+H_G**2)", [("G", R15), ("k_f", R15), ("r", R15), ("H_G", R15),
                                                      ("c", R15)]),
    ("test_19", "-1/(8*pi*G)*(c**4*k_f/r**2+H_G**2*c**2*(1-2*alpha))",
     [("G", R15), ("k_f", R15), ("r", R15), ("H_G", R15), ("alpha", R15), ("c", R15)]),
    ("test_20", "1/(4*pi)*alpha**2*h**2/(m**2*c**2)*(omega_0/omega)**2*(omega_0/omega+omega/omega_0-sin(beta)**2)",
     [("omega", R15), ("omega_0", R15), ("alpha", R15), ("h", R15), ("m", R15), ("c", R15), ("beta", (0, 6))]),
]]

FEYNMAN: list[Problem] = LAWS + BONUS


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


#: the held-out third: the 40 laws whose names have the smallest SHA-256 digests
HELDOUT: frozenset[str] = frozenset(sorted((p.name for p in FEYNMAN), key=_digest)[:len(FEYNMAN) // 3])
#: the development part: the other 80 laws
DEV: frozenset[str] = frozenset(p.name for p in FEYNMAN) - HELDOUT


def part(which: str) -> list[Problem]:
    """The laws of ``dev``, ``heldout`` or ``all``, in the table's order."""
    if which not in ("dev", "heldout", "all"):
        raise ValueError(f"part: expected 'dev', 'heldout' or 'all', got {which!r}")
    keep = {"dev": DEV, "heldout": HELDOUT, "all": DEV | HELDOUT}[which]
    return [p for p in FEYNMAN if p.name in keep]
