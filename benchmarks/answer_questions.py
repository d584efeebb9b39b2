"""Spoken-style questions and how a strict grader judges their answers.

`facts` is a tuple of groups: a right answer contains every group, and a group is there when
any of its alternatives is (case-insensitive, whole words; a trailing `*` matches any ending:
"scatter*" finds "scattering"). Numbers are accepted as digits or words. `wrong` lists what
contradicts the fact ("A spider has four legs ... eight" is wrong): a right answer contains none
of it. A question with several turns is a conversation: the model's own earlier answers stay in
the history, and only the last answer is judged.

Two kinds are judged with rules of their own:
- about the user: facts the user gave are told back as theirs ("Your name is Maria"); an answer
  that claims them for the assistant ("My name is Maria", "I live in Lisbon") is wrong;
- unknowable: the assistant cannot know the answer (the time, the weather, the news); a right
  answer says so, and one that states a value is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

Facts = tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Question:
    turns: tuple[str, ...]
    facts: Facts
    kind: str
    wrong: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return " / ".join(self.turns)


KNOWLEDGE, ARITHMETIC, ADVICE, FOLLOW_UP = "knowledge", "arithmetic", "advice", "follow-up"
ABOUT_USER, UNKNOWABLE = "about the user", "unknowable"
KINDS = (KNOWLEDGE, ARITHMETIC, ADVICE, FOLLOW_UP, ABOUT_USER, UNKNOWABLE)

# The assistant speaking of the user's facts as its own.
FIRST_PERSON = (
    "my name", "i live", "i m from", "i am from", "my favo*", "i work as", "i m a teacher",
    "my job", "i m a nurse", "i am a nurse", "my dog", "my cat", "my sister", "my brother",
    "my birthday", "i m allergic", "i am allergic", "my car", "my daughter", "my son",
    "i m going", "i am going",
)  # fmt: skip
# Saying it cannot know: the right answer to an unknowable question.
CANNOT_KNOW = (
    "don t know", "do not know", "can t", "cannot", "can not", "unable", "not able",
    "no access", "don t have", "do not have", "no way", "not connected", "real time",
    "not sure", "no information", "couldn t", "could not", "without access",
)  # fmt: skip


def _q(kind: str, *turns: str, facts: Facts, wrong: tuple[str, ...] = ()) -> Question:
    if kind == ABOUT_USER:
        wrong = (*wrong, *FIRST_PERSON)
    return Question(turns, facts, kind, wrong)


# Unknowable without a clock among the tools (`--tools time`).
CLOCK_QUESTIONS = ("What time is it?", "What is today's date?")


def _unknowable(question: str, *invented: str) -> Question:
    return Question((question,), (CANNOT_KNOW,), UNKNOWABLE, invented)


NUMBERS = {
    n: words
    for n, words in {
        2: ("2", "two"), 3: ("3", "three"), 4: ("4", "four"), 5: ("5", "five"), 6: ("6", "six"),
        7: ("7", "seven"), 8: ("8", "eight"), 9: ("9", "nine"), 10: ("10", "ten"),
        12: ("12", "twelve"),
    }.items()
}  # fmt: skip


def _others(*numbers: int) -> tuple[str, ...]:
    """Every small number but `numbers`, as digits and words: a count given twice over."""
    return tuple(w for n, words in NUMBERS.items() if n not in numbers for w in words)


QUESTIONS: tuple[Question, ...] = (
    # -- general knowledge ---------------------------------------------------------------------
    _q(KNOWLEDGE, "What is the capital of France?", facts=(("paris",),)),
    _q(KNOWLEDGE, "What is the capital of Italy?", facts=(("rome",),), wrong=("milan",)),
    _q(KNOWLEDGE, "What is the capital of Japan?", facts=(("tokyo",),), wrong=("kyoto",)),
    _q(KNOWLEDGE, "What is the capital of Canada?", facts=(("ottawa",),), wrong=("toronto",)),
    _q(KNOWLEDGE, "Who wrote Romeo and Juliet?", facts=(("shakespeare",),)),
    _q(KNOWLEDGE, "What color do you get when you mix blue and yellow?", facts=(("green",),)),
    _q(KNOWLEDGE, "What color do you get when you mix red and white?", facts=(("pink",),)),
    _q(KNOWLEDGE, "How many legs does a spider have?", facts=(("8", "eight"),),
       wrong=_others(8)),
    _q(KNOWLEDGE, "How many legs does an insect have?", facts=(("6", "six"),),
       wrong=_others(6)),
    _q(KNOWLEDGE, "What is the largest planet in our solar system?", facts=(("jupiter",),)),
    _q(KNOWLEDGE, "Which planet is closest to the sun?", facts=(("mercury",),),
       wrong=("venus",)),
    _q(KNOWLEDGE, "What day comes after Monday?", facts=(("tuesday",),),
       wrong=("sunday", "wednesday")),
    _q(KNOWLEDGE, "What month comes after June?", facts=(("july",),), wrong=("may", "august")),
    _q(KNOWLEDGE, "Why is the sky blue?", facts=(("scatter*",),)),
    _q(KNOWLEDGE, "At what temperature does water boil, in Celsius?",
       facts=(("100", "one hundred", "a hundred"),)),
    _q(KNOWLEDGE, "At what temperature does water freeze, in Celsius?",
       facts=(("0", "zero"),), wrong=("32", "thirty two")),
    _q(KNOWLEDGE, "Which ocean is the largest?", facts=(("pacific",),), wrong=("atlantic",)),
    _q(KNOWLEDGE, "What gas do plants take in from the air?",
       facts=(("carbon dioxide", "co2", "co₂"),)),
    _q(KNOWLEDGE, "What gas do we need to breathe?", facts=(("oxygen",),)),
    _q(KNOWLEDGE, "Who painted the Mona Lisa?", facts=(("leonardo", "da vinci"),)),
    _q(KNOWLEDGE, "What is the chemical symbol for gold?", facts=(("au",),)),
    _q(KNOWLEDGE, "What is the chemical formula for water?", facts=(("h2o", "h₂o"),)),
    _q(KNOWLEDGE, "How many continents are there?", facts=(("7", "seven"),),
       wrong=_others(7)),
    _q(KNOWLEDGE, "What is the tallest mountain in the world?", facts=(("everest",),)),
    _q(KNOWLEDGE, "What is the longest river in the world?",
       facts=(("nile", "amazon"),)),
    _q(KNOWLEDGE, "Which planet is called the red planet?", facts=(("mars",),)),
    _q(KNOWLEDGE, "What language do people speak in Brazil?", facts=(("portuguese",),),
       wrong=("spanish",)),
    _q(KNOWLEDGE, "How many days are there in a leap year?",
       facts=(("366", "three hundred sixty six", "three hundred and sixty six"),)),
    _q(KNOWLEDGE, "How many days are there in a week?", facts=(("7", "seven"),),
       wrong=_others(7)),
    _q(KNOWLEDGE, "How many hours are there in a day?", facts=(("24", "twenty four"),)),
    _q(KNOWLEDGE, "What do bees make?", facts=(("honey",),)),
    _q(KNOWLEDGE, "Which animal says moo?", facts=(("cow*",),)),
    _q(KNOWLEDGE, "What is the opposite of hot?", facts=(("cold",),)),
    _q(KNOWLEDGE, "What is the largest mammal?", facts=(("blue whale*",),),
       wrong=("elephant",)),
    _q(KNOWLEDGE, "What is the fastest land animal?", facts=(("cheetah*",),)),
    _q(KNOWLEDGE, "Who was the first president of the United States?",
       facts=(("washington",),)),
    _q(KNOWLEDGE, "What is the freezing point of water in Fahrenheit?",
       facts=(("32", "thirty two"),)),
    _q(KNOWLEDGE, "How many strings does a standard guitar have?", facts=(("6", "six"),),
       wrong=_others(6)),
    _q(KNOWLEDGE, "What is the main ingredient of guacamole?", facts=(("avocado*",),)),
    _q(KNOWLEDGE, "In which country are the pyramids of Giza?", facts=(("egypt",),)),
    # -- arithmetic ------------------------------------------------------------------------------
    _q(ARITHMETIC, "What is seven times eight?", facts=(("56", "fifty six"),)),
    _q(ARITHMETIC, "What is fifteen plus twenty seven?", facts=(("42", "forty two"),)),
    _q(ARITHMETIC, "What is a hundred minus thirty seven?", facts=(("63", "sixty three"),)),
    _q(ARITHMETIC, "If I have three apples and eat one, how many are left?",
       facts=(("2", "two"),), wrong=_others(2, 3)),
    _q(ARITHMETIC, "What is half of fifty?", facts=(("25", "twenty five"),)),
    _q(ARITHMETIC, "How many minutes are there in two hours?",
       facts=(("120", "one hundred twenty", "one hundred and twenty", "a hundred and twenty"),)),
    _q(ARITHMETIC, "What is the square root of eighty one?", facts=(("9", "nine"),),
       wrong=_others(9)),
    _q(ARITHMETIC, "What is twelve times twelve?",
       facts=(("144", "one hundred forty four", "one hundred and forty four"),)),
    _q(ARITHMETIC, "What is nine plus six?", facts=(("15", "fifteen"),)),
    _q(ARITHMETIC, "What is twenty divided by four?", facts=(("5", "five"),),
       wrong=_others(4, 5)),
    _q(ARITHMETIC, "What is ten percent of two hundred?", facts=(("20", "twenty"),)),
    _q(ARITHMETIC, "How many seconds are there in a minute?", facts=(("60", "sixty"),)),
    # -- everyday advice -----------------------------------------------------------------------
    _q(ADVICE, "I have a headache. What can I do?",
       facts=(("water", "hydrat*", "rest*", "ibuprofen", "paracetamol", "acetaminophen",
               "aspirin", "pain reliever*", "painkiller*", "sleep*", "lie down", "relax*",
               "breath*", "meditat*", "doctor"),)),
    _q(ADVICE, "What should I wear if it's raining?",
       facts=(("umbrella*", "raincoat*", "rain jacket*", "waterproof", "rain boots",
               "wellington*", "poncho*"),)),
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
    _q(ADVICE, "How can I keep my houseplants healthy?",
       facts=(("water*",), ("light", "sun*", "window*")),),
    _q(ADVICE, "What can I do to stay focused while studying?",
       facts=(("break*", "phone*", "distraction*", "quiet", "pomodoro", "schedule", "goal*",
               "timer", "notification*"),)),
    _q(ADVICE, "I burned my finger on the stove. What should I do?",
       facts=(("cool", "cold"), ("water",)), wrong=("ice", "butter")),
    _q(ADVICE, "How do I make a good first impression?",
       facts=(("smil*", "eye contact", "listen*", "on time", "punctual", "handshake",
               "confiden*", "polite", "dress*"),)),
    _q(ADVICE, "What is a healthy breakfast?",
       facts=(("oat*", "fruit*", "egg*", "yogurt", "yoghurt", "whole grain*", "berr*",
               "banana*", "toast", "nut*"),)),
    _q(ADVICE, "How often should I water a cactus?",
       facts=(("week*", "month*", "dry", "rarely", "sparingly", "infrequent*"),),
       wrong=("every day", "daily")),
    # -- follow-ups: the last answer needs an earlier turn -------------------------------------
    _q(FOLLOW_UP, "I live in Lisbon.", "Which country is that in?", facts=(("portugal",),)),
    _q(FOLLOW_UP, "What is twelve times three?", "Now add four to that.",
       facts=(("40", "forty"),)),
    _q(FOLLOW_UP, "Who was the first person to walk on the moon?", "In which year was that?",
       facts=(("1969",),)),
    _q(FOLLOW_UP, "I'm going to Paris next week.", "What famous tower can I visit there?",
       facts=(("eiffel",),)),
    _q(FOLLOW_UP, "What is the capital of Germany?", "And what is its population, roughly?",
       facts=(("million",), ("3", "three", "3.5", "3.6", "3.7", "3.8", "4", "four")),
       wrong=("bonn",)),
    _q(FOLLOW_UP, "Name a fruit that is yellow.", "What color is it when it is not ripe?",
       facts=(("green",),)),
    _q(FOLLOW_UP, "Who wrote Hamlet?", "Name another play by the same writer.",
       facts=(("macbeth", "othello", "king lear", "romeo", "tempest", "midsummer",
               "julius caesar", "twelfth night", "merchant of venice", "much ado",
               "as you like it", "richard", "henry"),)),
    _q(FOLLOW_UP, "What is the boiling point of water in Celsius?", "And in Fahrenheit?",
       facts=(("212", "two hundred twelve", "two hundred and twelve"),)),
    # -- facts the user gave, asked back later ------------------------------------------------
    _q(ABOUT_USER, "Hi, my name is Sam.", "What is my name?", facts=(("sam",),)),
    _q(ABOUT_USER, "My favourite colour is blue.", "What is my favourite colour?",
       facts=(("blue",),)),
    _q(ABOUT_USER, "I have two cats and a dog.", "How many pets do I have?",
       facts=(("3", "three"),), wrong=_others(2, 3)),
    _q(ABOUT_USER, "My name is Maria and I live in Lisbon.", "What is the capital of Spain?",
       "How many legs does a spider have?", "Do you remember my name?",
       facts=(("maria",),)),
    _q(ABOUT_USER, "My name is Maria and I live in Lisbon.", "What is the capital of Spain?",
       "Which city do I live in?", facts=(("lisbon",),), wrong=("madrid",)),
    _q(ABOUT_USER, "I work as a nurse.", "What is a good snack for a long day?",
       "What is my job?", facts=(("nurse",),)),
    _q(ABOUT_USER, "I'm allergic to peanuts.", "Can I eat a peanut butter sandwich?",
       facts=(("no", "not", "avoid*", "shouldn t", "should not"),),
       wrong=("yes you can", "sure you can")),
    _q(ABOUT_USER, "My sister is called Anna.", "Who is Anna?", facts=(("sister",),),
       wrong=("my sister",)),
    _q(ABOUT_USER, "My birthday is on the fourth of July.", "When is my birthday?",
       facts=(("july",), ("4", "4th", "fourth", "four")), wrong=("june", "august")),
    _q(ABOUT_USER, "I drive a red car.", "What is the capital of France?",
       "What color is my car?", facts=(("red",),)),
    _q(ABOUT_USER, "I have a dog called Rex.", "What is my dog's name?", facts=(("rex",),)),
    _q(ABOUT_USER, "I'm from Canada.", "Where am I from?", facts=(("canada",),)),
    # -- what the assistant cannot know -------------------------------------------------------
    _unknowable(CLOCK_QUESTIONS[0], "o clock", "a m", "p m", "pm", "noon", "midnight"),
    _unknowable("What's the weather like today?", "degrees", "it s sunny", "it is sunny",
                "it s raining", "it is raining", "it s cloudy", "it is cloudy"),
    _unknowable(CLOCK_QUESTIONS[1], "january", "february", "march", "april", "june",
                "july", "august", "september", "october", "november", "december"),
    _unknowable("What was the score of last night's football game?", "won", "lost"),
    _unknowable("What is my bank balance?", "dollars", "euros", "pounds"),
    _unknowable("What is the price of bitcoin right now?", "dollars", "thousand"),
    _unknowable("Who is at my front door?", "it s your", "it is your", "the mailman",
                "the postman"),
    _unknowable("What am I holding in my hand?", "you are holding a", "you re holding a"),
)  # fmt: skip
