// The most common passwords of 8 or more characters from public breach corpora (lower case),
// checked case-insensitively after NFKC. Short ones are omitted: the length floor refuses them.
const LIST = `123456789 12345678 1234567890 password 11111111 iloveyou 00000000 qwertyuiop 123123123
password1 qwerty123 1q2w3e4r 987654321 sunshine princess 1qaz2wsx football baseball welcome!
abc12345 123qweasd password123 1234qwer 88888888 superman 123456789a iloveyou1 qwerty12 zaq12wsx
qwe123qwe michelle jennifer 12341234 11223344 babygirl computer whatever starwars 1234567a
trustno1 passw0rd 0987654321 qwertyui 1q2w3e4r5t asdfghjkl 12345678910 password12 qwerty1234
q1w2e3r4 123654789 internet 1234567891 q1w2e3r4t5y6 asdfasdf mustang1 samsung1 11111111111
123abc123 jordan23 liverpool chocolate butterfly football1 abcd1234 password! iloveyou2
1qazxsw2 changeme letmein1 welcome1 welcome123 admin123 administrator 12qwaszx q1w2e3r4t5
monkey123 dragon123 master123 shadow123 baseball1 princess1 sunshine1 charlie1 123456789q
asdf1234 qazwsxedc 1234abcd 147258369 159753456 789456123 123456123 999999999 7777777777
aaaaaaaa 12121212 55555555 66666666 22222222 99999999 12344321 qweasdzxc 1a2b3c4d
password2 password01 p@ssw0rd p@ssword passwort motdepasse contraseña senha123 azertyuiop
starwars1 pokemon123 minecraft minecraft1 blink182 metallica nirvana1 spiderman batman123
michael1 jessica1 ashley123 lovely123 iloveu123 loveyou1 fuckyou1 123456789z 1111111111
qwerty123456 1234567890q 123456qwerty qwertyqwerty 11112222 10203040 147852369 741852963
999999999a zxcvbnm1 zxcvbnm123 qazwsx123 asdfghjk 1234qwerasdf qwer1234 letmein123
hello123 hellokitty sunflower football123 soccer123 hockey123 summer2024 winter2024
spring2024 autumn2024 summer2025 winter2025 password2024 password2025 welcome2024 welcome2025
changeme123 secret123 default123 guest1234 test1234 testtest demo1234 postern123
correcthorsebatterystaple thequickbrownfox iloveyou123 trustno1! 1234567890123 123456789012
abcdefgh abcdefghi abcdefghij abc123456 a1b2c3d4 aa123456 qwerty11 qwerty01 pass1234
password1234 passwordpassword 1password 123password mypassword yourpassword adminadmin
rootroot toortoor administrator1 superuser letmeinnow opensesame whatever1 nothing1
unknown1 anything computer1 internet1 samsung123 iphone123 google123 facebook1 linkedin1`;

/** The shipped list of common passwords, lower case. */
export const COMMON_PASSWORDS: ReadonlySet<string> = new Set(
  LIST.split(/\s+/).filter((word) => word.length > 0),
);
