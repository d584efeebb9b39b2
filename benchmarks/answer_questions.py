"""Short spoken-style questions and the facts a right answer must contain.

`facts` is a tuple of groups: a right answer contains every group, and a group is there when
any of its alternatives is (case-insensitive, whole words; a trailing `*` matches any ending:
"scatter*" finds "scattering"). Numbers are accepted as digits or words. A question with two
turns is a conversation: the model's own first answer stays in the history, and only the second
answer is judged.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Question:
    turns: tuple[str, ...]
    facts: tuple[tuple[str, ...], ...]
    kind: str

    @property
    def text(self) -> str:
        return " / ".join(self.turns)


def _q(kind: str, *turns: str, facts: tuple[tuple[str, ...], ...]) -> Question:
    return Question(turns, facts, kind)


KNOWLEDGE, ARITHMETIC, ADVICE, FOLLOW_UP = "knowledge", "arithmetic", "advice", "follow-up"

QUESTIONS: tuple[Question, ...] = (
    # The twelve of the first comparison (FACTS.md), then more of each kind.
    _q(KNOWLEDGE, "What is the capital of France?", facts=(("paris",),)),
    _q(KNOWLEDGE, "Who wrote Romeo and Juliet?", facts=(("shakespeare",),)),
    _q(KNOWLEDGE, "What color do you get when you mix blue and yellow?", facts=(("green",),)),
    _q(KNOWLEDGE, "How many legs does a spider have?", facts=(("8", "eight"),)),
    _q(KNOWLEDGE, "What is the largest planet in our solar system?", facts=(("jupiter",),)),
    _q(KNOWLEDGE, "What day comes after Monday?", facts=(("tuesday",),)),
    _q(KNOWLEDGE, "Why is the sky blue?", facts=(("scatter*",),)),
    _q(KNOWLEDGE, "At what temperature does water boil, in Celsius?",
       facts=(("100", "one hundred", "a hundred"),)),
    _q(ARITHMETIC, "What is seven times eight?", facts=(("56", "fifty six"),)),
    _q(ARITHMETIC, "What is fifteen plus twenty seven?", facts=(("42", "forty two"),)),
    _q(ADVICE, "I have a headache. What can I do?",
       facts=(("water", "hydrat*", "rest*", "ibuprofen", "paracetamol", "acetaminophen",
               "aspirin", "pain reliever*", "painkiller*", "sleep*", "lie down", "relax*",
               "breath*", "meditat*", "doctor"),)),
    _q(ADVICE, "What should I wear if it's raining?",
       facts=(("umbrella*", "raincoat*", "rain jacket*", "waterproof", "rain boots",
               "wellington*", "poncho*"),)),
    # General knowledge
    _q(KNOWLEDGE, "Which ocean is the largest?", facts=(("pacific",),)),
    _q(KNOWLEDGE, "What gas do plants take in from the air?",
       facts=(("carbon dioxide", "co2", "co₂"),)),
    _q(KNOWLEDGE, "Who painted the Mona Lisa?", facts=(("leonardo", "da vinci"),)),
    _q(KNOWLEDGE, "What is the chemical symbol for gold?", facts=(("au",),)),
    _q(KNOWLEDGE, "How many continents are there?", facts=(("7", "seven"),)),
    _q(KNOWLEDGE, "What is the tallest mountain in the world?", facts=(("everest",),)),
    _q(KNOWLEDGE, "Which planet is called the red planet?", facts=(("mars",),)),
    _q(KNOWLEDGE, "What language do people speak in Brazil?", facts=(("portuguese",),)),
    _q(KNOWLEDGE, "How many days are there in a leap year?",
       facts=(("366", "three hundred sixty six", "three hundred and sixty six"),)),
    _q(KNOWLEDGE, "How many hours are there in a day?", facts=(("24", "twenty four"),)),
    # Arithmetic
    _q(ARITHMETIC, "What is a hundred minus thirty seven?", facts=(("63", "sixty three"),)),
    _q(ARITHMETIC, "If I have three apples and eat one, how many are left?",
       facts=(("2", "two"),)),
    _q(ARITHMETIC, "What is half of fifty?", facts=(("25", "twenty five"),)),
    _q(ARITHMETIC, "How many minutes are there in two hours?",
       facts=(("120", "one hundred twenty", "one hundred and twenty", "a hundred and twenty"),)),
    _q(ARITHMETIC, "What is the square root of eighty one?", facts=(("9", "nine"),)),
    # Everyday advice
    _q(ADVICE, "How do I boil an egg?", facts=(("water",), ("minute*",))),
    _q(ADVICE, "How can I fall asleep faster?",
       facts=(("screen*", "caffeine", "coffee", "routine", "dark*", "relax*", "breath*",
               "schedule", "same time", "meditat*", "phone*", "cool"),)),
    _q(ADVICE, "My phone battery drains really fast. What should I do?",
       facts=(("brightness", "background", "app*", "battery saver", "low power",
               "power saving", "setting*", "location", "bluetooth", "wi fi", "wifi"),)),
    _q(ADVICE, "What's a good way to remember someone's name?",
       facts=(("repeat*", "say it", "use their name", "using their name", "associat*",
               "write*", "link*", "mnemonic*", "visuali*", "picture"),)),
    # Follow-ups: the second answer needs the first turn.
    _q(FOLLOW_UP, "Hi, my name is Sam.", "What is my name?", facts=(("sam",),)),
    _q(FOLLOW_UP, "I live in Lisbon.", "Which country is that in?", facts=(("portugal",),)),
    _q(FOLLOW_UP, "I have two cats and a dog.", "How many pets do I have?",
       facts=(("3", "three"),)),
    _q(FOLLOW_UP, "What is twelve times three?", "Now add four to that.",
       facts=(("40", "forty"),)),
    _q(FOLLOW_UP, "Who was the first person to walk on the moon?", "In which year was that?",
       facts=(("1969",),)),
    _q(FOLLOW_UP, "I'm going to Paris next week.", "What famous tower can I visit there?",
       facts=(("eiffel",),)),
    _q(FOLLOW_UP, "My favourite colour is blue.", "What is my favourite colour?",
       facts=(("blue",),)),
)  # fmt: skip
